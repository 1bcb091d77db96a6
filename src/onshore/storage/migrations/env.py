"""Alembic environment of a region's record store, driven by ``onshore.storage.migrate`` (no alembic.ini).

The caller passes an open ``Connection`` in a transaction as ``config.attributes["connection"]`` (every revision runs
in that one transaction; SQLite and PostgreSQL both have transactional DDL) and, for ``revision --autogenerate``
and the schema tests, the full metadata as ``config.attributes["target_metadata"]``.
"""

from __future__ import annotations

from alembic import context

from onshore.storage.migrate import for_dialect

config = context.config
if context.is_offline_mode():
    raise RuntimeError("onshore runs its migrations online only: use `onshore db upgrade`")

context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes.get("target_metadata"),
    # SQLite alters tables by copy-and-move; batch operations do that there and plain ALTERs on PostgreSQL.
    render_as_batch=True,
    compare_type=True,
    include_object=for_dialect(config.attributes["connection"].dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
