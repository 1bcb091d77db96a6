"""Schema versions of a region's record store: the Alembic revisions in ``storage/migrations``, run from code.

A store is in one of five states (``SchemaState.status``):

- ``current``: at this onshore's head revision, the only state the runtime opens;
- ``behind``: at an older revision; ``onshore db upgrade`` brings it to head;
- ``unversioned``: tables made by an onshore before migrations (no ``alembic_version``); ``onshore db upgrade``
  adopts it (revision 0001 creates only what is missing) and brings it to head;
- ``empty``: no tables yet; ``onshore init`` or ``onshore db upgrade`` creates it at head;
- ``ahead``: at a revision this onshore does not know (a newer onshore upgraded it); run that onshore.

Every upgrade runs in one transaction (SQLite and PostgreSQL both have transactional DDL): it completes or
leaves the store as it was. Opening a store checks its revision against ``schema.REVISION`` with one query;
Alembic (~0.1 s to import) is loaded only to upgrade, compare or tell behind from ahead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from onshore.config import Settings
from onshore.errors import NotFoundError, SchemaVersionError, StorageError
from onshore.storage.engine import make_engine
from onshore.storage.partitions import is_partition_name, layout_diff
from onshore.storage.schema import REVISION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None, target_metadata: MetaData | None = None) -> Config:
    """An Alembic ``Config`` for the packaged migrations (no alembic.ini), handing ``connection`` to ``env.py``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = target_metadata
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of the migrations this onshore ships (the one it needs)."""
    head = _scripts().get_current_head()
    assert head is not None, "storage/migrations/versions holds no revision"
    return head


def revisions() -> list[str]:
    """Every revision this onshore ships, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


@dataclass(frozen=True)
class SchemaState:
    """Where one record store stands against this onshore's migrations."""

    revision: str | None  # as recorded in alembic_version; None when the table is absent or empty
    head: str
    has_tables: bool

    @property
    def status(self) -> str:
        """``current``, ``behind``, ``unversioned``, ``empty`` or ``ahead`` (see the module docstring)."""
        if self.revision == self.head:
            return "current"
        if self.revision is None:
            return "unversioned" if self.has_tables else "empty"
        return "behind" if self.revision in revisions() else "ahead"

    def problem(self, region: str) -> str:
        """One line saying why the runtime refuses this store (empty for a current store)."""
        where = f"region {region}: record store"
        if self.status == "current":
            return ""
        if self.status == "behind":
            return f"{where} is at revision {self.revision}, this onshore needs {self.head}"
        if self.status == "unversioned":
            return f"{where} has tables but no schema revision (made before migrations), this onshore needs {self.head}"
        if self.status == "empty":
            return f"{where} is empty, this onshore needs revision {self.head}"
        return (
            f"{where} is at revision {self.revision}, unknown to this onshore (its newest is {self.head}): "
            "it was upgraded by a newer onshore; run that version"
        )


def schema_state(engine: Engine) -> SchemaState:
    """Read the store's revision and whether it has any tables (a read; creates nothing but an empty SQLite file).

    Raises:
        StorageError: the database cannot be reached.
    """
    try:
        with engine.connect().execution_options(onshore_read=True) as conn:
            names = inspect(conn).get_table_names()
            revision = _recorded_revision(conn) if VERSION_TABLE in names else None
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the record store's schema revision ({exc.__class__.__name__})") from exc
    return SchemaState(revision=revision, head=REVISION, has_tables=any(t != VERSION_TABLE for t in names))


def _recorded_revision(conn: Connection) -> str | None:
    """The one revision ``alembic_version`` records (None when empty), as Alembic's migration context reads it."""
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise StorageError(f"the record store records {len(rows)} schema revisions; onshore's migrations have one head")
    return rows[0] if rows else None


def require_current(engine: Engine, *, region: str, upgrade_command: str) -> None:
    """Refuse a store that is not at head.

    Args:
        upgrade_command: the command that fixes it, as the operator types it (``onshore db upgrade -c PATH``).

    Raises:
        SchemaVersionError: the store is empty, behind, unversioned or ahead; the message names the command.
        StorageError: the database cannot be reached.
    """
    state = schema_state(engine)
    if state.status == "current":
        return
    problem = state.problem(region)
    if state.status == "ahead":
        raise SchemaVersionError(problem)
    raise SchemaVersionError(f"{problem}: run `{upgrade_command}`")


def upgrade(engine: Engine, *, region: str, target: str = "head") -> tuple[str | None, str]:
    """Bring the store to ``target`` (default: head) in one transaction; a store already there is left alone.

    Returns:
        ``(revision before, revision after)``; before is None for an empty or unversioned store.

    Raises:
        SchemaVersionError: the store is ahead of this onshore, or ``target`` is not a known revision.
        StorageError: the database failed during the upgrade (nothing was changed).
    """
    from alembic import command
    from alembic.util import CommandError

    before = schema_state(engine)
    if before.status == "ahead":
        raise SchemaVersionError(before.problem(region))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), target)
            after = _recorded_revision(conn)
    except CommandError as exc:
        raise SchemaVersionError(f"region {region}: cannot upgrade the record store to {target!r}: {exc}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(
            f"region {region}: record store upgrade failed and was rolled back ({exc.__class__.__name__})"
        ) from exc
    assert after is not None
    return before.revision, after


def _region_engines(settings: Settings, only: str | None) -> list[tuple[str, Engine]]:
    if only is not None and only not in settings.regions:
        raise NotFoundError(f"region {only!r} is not configured; configured: {', '.join(settings.regions)}")
    return [
        (name, make_engine(rs.record_store, base_dir=settings.base_dir, synchronous=rs.sqlite_synchronous))
        for name, rs in settings.regions.items()
        if only is None or name == only
    ]


def region_states(settings: Settings, *, only: str | None = None) -> dict[str, SchemaState]:
    """Each configured region's record-store state (or only region ``only``).

    Raises:
        NotFoundError: ``only`` is not a configured region.
        StorageError: a record store cannot be reached.
    """
    states: dict[str, SchemaState] = {}
    for name, engine in _region_engines(settings, only):
        try:
            states[name] = schema_state(engine)
        finally:
            engine.dispose()
    return states


def upgrade_regions(settings: Settings, *, only: str | None = None) -> dict[str, tuple[str | None, str]]:
    """Upgrade each configured region's record store (or only region ``only``) to head, one after another.

    Returns:
        region → (revision before, revision after).

    Raises:
        NotFoundError: ``only`` is not a configured region.
        SchemaVersionError: a store is ahead of this onshore (the regions before it are upgraded).
        StorageError: a store failed during its upgrade (that store is unchanged).
    """
    done: dict[str, tuple[str | None, str]] = {}
    for name, engine in _region_engines(settings, only):
        try:
            done[name] = upgrade(engine, region=name)
        finally:
            engine.dispose()
    return done


def schema_diff(engine: Engine, metadata: MetaData) -> list[Any]:
    """What the store lacks or has beyond ``metadata``; empty when they agree.

    Alembic's ``compare_metadata``, plus on PostgreSQL what it does not compare: the partitioning of a table
    declared with ``postgresql_partition_by`` and that table's primary key (``partitions.layout_diff``).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(onshore_read=True) as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": for_dialect(conn.dialect.name)}
        )
        diffs: list[Any] = list(compare_metadata(context, metadata))
        if conn.dialect.name == "postgresql":
            diffs.extend(layout_diff(conn))
        return diffs


def for_dialect(dialect: str) -> Any:
    """Alembic's ``include_object`` hook: leave out what the metadata declares for another dialect only.

    An index or constraint made with ``.ddl_if(dialect=...)`` (the GIN index on ``records.tag_set`` on PostgreSQL,
    the unique (vehicle, message id) of ``records`` on SQLite) and a table with ``info={"dialect": ...}``
    (``record_keys`` on PostgreSQL) exist on that dialect only; Alembic's comparison reads neither, so they are
    skipped here on other dialects. The month partitions of ``records`` (``storage.partitions``) are made at run
    time, not declared: they are skipped too.
    """

    def include(obj: Any, name: str | None, type_: str, reflected: bool, _compare_to: Any) -> bool:
        if reflected:
            return not (type_ == "table" and name is not None and is_partition_name(name))
        only = _declared_dialect(obj, type_)
        return only is None or only == dialect

    return include


def _declared_dialect(obj: Any, type_: str) -> str | None:
    """The one dialect a metadata object is declared for, or None (every dialect)."""
    if type_ == "table":
        return obj.info.get("dialect")  # type: ignore[no-any-return]
    return getattr(getattr(obj, "_ddl_if", None), "dialect", None)


def new_revision(message: str, *, engine: Engine, metadata: MetaData, autogenerate: bool) -> Path:
    """Write the next revision file (``NNNN_slug.py``) into ``storage/migrations/versions`` of this checkout.

    With ``autogenerate``, ``engine`` must be a scratch store at head: the file holds what ``metadata`` adds to it.
    """
    from alembic import command

    number = int(head_revision()) + 1
    with engine.begin() as conn:
        script = command.revision(
            alembic_config(conn, metadata), message, autogenerate=autogenerate, rev_id=f"{number:04d}"
        )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
