"""De-identification, shared by the minimise stage (on the way in) and the border gate (on the way out).

- ``pseudonyms``: keyed pseudonyms (region-keyed at ingest, per-recipient keys at the border);
- ``coarsen``: precision limits on positions (decimal places at ingest, grid cells at the border);
- ``transforms``: the named export transforms a pack's class rules and a basis's conditions apply.
"""
