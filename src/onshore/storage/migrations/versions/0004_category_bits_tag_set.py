"""Categories and tags an index serves: ``records.category_bits`` and ``records.tag_set``.

Both are derived from the content columns ``categories`` and ``tags`` (``onshore.storage.predicates``), filled here
for the rows already stored: ``category_bits`` with one bit per category, ``tag_set`` with the tags as a text array
on PostgreSQL (under a GIN index) and as comma-wrapped text (``,a,b,``) on SQLite. ``ix_records_category_ts``
serves a category over a time range.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from onshore.storage.predicates import CATEGORY_BITS

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _bits_sql() -> str:
    # each name is a fixed identifier from CATEGORY_BITS, never input
    terms = [
        f"CASE WHEN (',' || categories || ',') LIKE '%,{name},%' THEN {bit} ELSE 0 END"
        for name, bit in CATEGORY_BITS.items()
    ]
    return " + ".join(terms)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    tag_type = postgresql.ARRAY(sa.Text()) if postgres else sa.Text()
    with op.batch_alter_table("records") as batch:
        batch.add_column(
            sa.Column(
                "category_bits", sa.SmallInteger(), nullable=True, comment="one bit per category (storage.predicates)"
            )
        )
        batch.add_column(
            sa.Column(
                "tag_set", tag_type, nullable=True, comment="the tags: a text array (PostgreSQL), ',a,b,' (SQLite)"
            )
        )
    if postgres:
        tags = "CASE WHEN tags = '' THEN '{}'::text[] ELSE string_to_array(tags, ',') END"
    else:
        tags = "CASE WHEN tags = '' THEN '' ELSE ',' || tags || ',' END"
    op.execute(f"UPDATE records SET category_bits = {_bits_sql()}, tag_set = {tags}")
    with op.batch_alter_table("records") as batch:
        batch.alter_column("category_bits", existing_type=sa.SmallInteger(), nullable=False)
        batch.alter_column("tag_set", existing_type=tag_type, nullable=False)
    op.create_index("ix_records_category_ts", "records", ["category_bits", "ts_ms"])
    if postgres:
        op.create_index("ix_records_tag_set", "records", ["tag_set"], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_records_tag_set", table_name="records")
    op.drop_index("ix_records_category_ts", table_name="records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("tag_set")
        batch.drop_column("category_bits")
