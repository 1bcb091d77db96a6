"""The reports the law asks for, written from the ledger, the registers and the stores.

- ``facts``: what a report is built from (signed checkpoints, event prefixes, registers, inventory);
- ``figures``: every figure, computed from ledger events alone;
- ``build``: a report of a kind as plain data (the pack's items with their confidence tags);
- ``i18n``, ``charts``, ``render``: words in Chinese and English, matplotlib charts, Markdown → HTML → PDF;
- ``service``: ``ReportService`` (CLI ``cli``, API ``http``); ``verify``: recompute a report's figures.

This package's ``__init__`` imports nothing.
"""
