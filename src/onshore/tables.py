"""Every table of a region's record store: importing this registers each feature's tables on storage's metadata.

Storage owns the one ``MetaData`` (``onshore.storage.schema.metadata``) but never imports the packages that declare
tables on it; this module does, for what needs the whole schema at once: ``onshore db revision`` (autogenerate)
and the test that the migrations' head equals the metadata.
"""

from __future__ import annotations

from sqlalchemy import MetaData

# Imported for the tables they declare on the metadata.
import onshore.border.tables  # noqa: F401
import onshore.ledger.signing  # noqa: F401
import onshore.ledger.store  # noqa: F401
import onshore.registers.tables  # noqa: F401
from onshore.storage.schema import metadata


def full_metadata() -> MetaData:
    """Storage's metadata with the tables of every feature package (ledger, border) declared on it."""
    return metadata
