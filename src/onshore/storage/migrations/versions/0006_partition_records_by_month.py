"""PostgreSQL: ``records`` partitioned by month of ``ts_ms``, and ``record_keys`` for de-duplication.

The table is rebuilt: renamed aside, a partitioned table made ``LIKE`` it (the same columns, types, defaults and
comments; ``id`` keeps its sequence, so new ids continue after the old ones), one partition made for each month
(UTC) its rows fall in (``storage.partitions``), every row copied with its id, then the old table dropped. A
partitioned table's primary key and unique constraints must hold the partition key: the primary key becomes
``(id, ts_ms)``, and ``UNIQUE (vehicle_ref, msg_id)`` moves to the new, unpartitioned ``record_keys`` (filled
from the rows), which the insert consults (``storage.record_keys``). The indexes are made again on the
partitioned table (each partition gets its own). The time it takes grows with the rows: every row is copied
once, in the upgrade's one transaction.

SQLite is not partitioned: nothing changes there.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from onshore.storage.partitions import Month, ensure_partitions

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ASIDE = "records_unpartitioned"
_INDEXES = (
    "CREATE INDEX ix_records_subject ON records (subject_ref)",
    "CREATE INDEX ix_records_category_ts ON records (category_bits, ts_ms)",
    "CREATE INDEX ix_records_tag_set ON records USING gin (tag_set)",
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _clear(table: str) -> None:
    """Drop the constraints and indexes of ``table`` (their names are the database's, wanted by the new table)."""
    conn = op.get_bind()
    for (name,) in conn.execute(
        sa.text("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u')"),
        {"t": table},
    ):
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for (name,) in conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}):
        op.execute(f'DROP INDEX "{name}"')


def _columns(table: str) -> str:
    rows = op.get_bind().execute(
        sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position"),
        {"t": table},
    )
    return ", ".join(f'"{name}"' for (name,) in rows)


def _rebuild(*, partitioned: bool) -> None:
    """Move ``records`` aside, make it again (partitioned or not) like the old one, copy every row, drop the old."""
    conn = op.get_bind()
    op.execute(f"ALTER TABLE records RENAME TO {_ASIDE}")
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": _ASIDE}).scalar()
    _clear(_ASIDE)
    layout = " PARTITION BY RANGE (ts_ms)" if partitioned else ""
    op.execute(f"CREATE TABLE records (LIKE {_ASIDE} INCLUDING DEFAULTS INCLUDING COMMENTS){layout}")
    op.execute(f"ALTER TABLE records ADD CONSTRAINT records_pkey PRIMARY KEY ({'id, ts_ms' if partitioned else 'id'})")
    if sequence is not None:  # the ids go on from where they were, and the sequence stays when the old table goes
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY records.id")
    if partitioned:
        starts = conn.execute(
            sa.text(
                "SELECT DISTINCT date_part('year', t)::int, date_part('month', t)::int FROM"
                f" (SELECT to_timestamp(floor(ts_ms / 1000.0)) AT TIME ZONE 'UTC' AS t FROM {_ASIDE}) AS m"
            )
        )
        ensure_partitions(conn, [Month(year, month).start_ms for year, month in starts])
    columns = _columns(_ASIDE)
    op.execute(f"INSERT INTO records ({columns}) SELECT {columns} FROM {_ASIDE}")
    if partitioned:
        op.create_table(
            "record_keys",
            sa.Column("vehicle_ref", sa.String(64), primary_key=True),
            sa.Column("msg_id", sa.String(128), primary_key=True),
            sa.Column(
                "ts_ms",
                sa.BigInteger(),
                nullable=False,
                comment="the record's time: which partition of records holds it",
            ),
        )
        op.execute(
            f"INSERT INTO record_keys (vehicle_ref, msg_id, ts_ms) SELECT vehicle_ref, msg_id, ts_ms FROM {_ASIDE}"
        )
    else:
        op.execute("ALTER TABLE records ADD CONSTRAINT uq_records_vehicle_msg UNIQUE (vehicle_ref, msg_id)")
    for statement in _INDEXES:
        op.execute(statement)
    op.execute(f"DROP TABLE {_ASIDE}")


def upgrade() -> None:
    if _postgres():
        _rebuild(partitioned=True)


def downgrade() -> None:
    if _postgres():
        _rebuild(partitioned=False)
        op.drop_table("record_keys")
