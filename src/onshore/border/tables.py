"""The border's tables in a region's record store (SQLite or PostgreSQL), declared on storage's one ``MetaData``.

- ``border_bases``: transfer bases (one row per basis, its spec as JSON, status and validity);
- ``border_provided``: who was provided abroad — one row per (transfer, person, kind, basis), the person as the
  region's ``subject_ref`` pseudonym; the counters count these rows distinct per window;
- ``border_opening_balances``: people provided abroad before onshore recorded transfers, declared by the officer;
- ``border_transfers`` and ``border_transfer_bases``: every release, denial and imported earlier transfer, with the
  decision's reasons, and what each basis carried.

Nothing here leaves the region; the ledger events of the border hold only counts and digests. A change to these
tables needs a migration (see docs/developer.md).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from onshore.storage.schema import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

border_bases = Table(
    "border_bases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("region", String(64), nullable=False, index=True),
    Column("route", String(64), nullable=False),
    Column("status", String(16), nullable=False, comment="draft | approved | revoked (expired is computed)"),
    Column("spec", Text, nullable=False, comment="the BasisSpec as JSON"),
    Column("approved_on", String(10), nullable=True),
    Column("expires_on", String(10), nullable=True),
    Column("validity_rule", String(100), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
)

border_provided = Table(
    "border_provided",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("region", String(64), nullable=False),
    Column("subject_ref", String(64), nullable=False),
    Column("kind", String(16), nullable=False, comment="pi (non-sensitive personal information) | sensitive"),
    Column("provided_ms", BigInteger, nullable=False),
    Column("transfer_id", String(64), nullable=False),
    Column("basis_id", String(64), nullable=True),
    # window counts: distinct people of a kind since a date
    Index("ix_border_provided_window", "region", "kind", "provided_ms", "subject_ref"),
    # "is this person already counted in the window?" for the people of a request
    Index("ix_border_provided_subject", "region", "subject_ref", "kind", "provided_ms"),
    Index("ix_border_provided_basis", "basis_id", "subject_ref"),
)

border_opening_balances = Table(
    "border_opening_balances",
    metadata,
    Column("region", String(64), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True, comment="pi | sensitive | processor"),
    Column("people", BigInteger, nullable=False),
    Column("recorded_ms", BigInteger, nullable=False),
)

border_transfers = Table(
    "border_transfers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("region", String(64), nullable=False, index=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, comment="released | denied"),
    Column("destination", String(3), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("people", BigInteger, nullable=False),
    Column("content_sha256", String(64), nullable=True),
    Column("ledger_index", BigInteger, nullable=True),
    # 0009: who asked, and the decision per class with its reasons (what `GET /v1/border/exports` lists)
    Column("requester", String(32), nullable=True),
    Column("decision", Text, nullable=True, comment="the decision per class with its reasons, as JSON"),
)

border_transfer_bases = Table(
    "border_transfer_bases",
    metadata,
    Column("transfer_id", String(64), primary_key=True),
    Column("basis_id", String(64), primary_key=True),
    Column("records", BigInteger, nullable=False),
    Column("people", BigInteger, nullable=False),
)
