"""The registers' one table in a region's record store, declared on storage's one ``MetaData`` (migration 0009).

One row per entry: the register it belongs to, its number, its current version and body (the spec as JSON),
its main date (received, occurred, started) for listing by year, its status, and the ledger index of the event
that recorded this version. The event's digest commits to ``entry_digest(register, id, version, body)``, so an
entry edited outside onshore no longer matches its event (``RegisterService.check``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from onshore.storage.schema import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

register_entries = Table(
    "register_entries",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("region", String(64), nullable=False),
    Column("register", String(32), nullable=False, comment="rights_request | incident | complaint | provision | …"),
    Column("day", String(10), nullable=False, comment="the entry's main date (received, occurred, started)"),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False, comment="the entry as JSON"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Index("ix_register_entries_register_day", "region", "register", "day"),
)
