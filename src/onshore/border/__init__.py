"""The border gate: nothing personal or important leaves its country without a basis in scope, counted and logged.

- ``tables``: the border's own tables in each region's record store (bases, people provided abroad, transfers);
- ``dates``: the legal calendar (local dates, counting windows, working days);
- ``bases``: transfer bases (security assessment, standard contract, SCC…), their validity and lifecycle;
- ``requests``: the export request format (YAML or JSON);
- ``selection``: which stored records a request concerns, grouped into data classes;
- ``counters``: distinct people provided abroad per counting window, and per-basis usage;
- ``gate``: the decision per data class (allow / transform / deny) with its reasons;
- ``transforms``: de-identification before release;
- ``bundles``: the export bundle (data, manifest, ledger inclusion proof);
- ``service``: ``BorderService``, used by the API (``http``) and the CLI (``cli``).

This package's ``__init__`` imports nothing; ``tables`` declares its tables on ``onshore.storage.schema.metadata``.
"""
