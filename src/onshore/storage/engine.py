"""The SQLAlchemy engine of a record-store URL: SQLite (embedded) or PostgreSQL (distributed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from onshore.errors import ConfigError


def make_engine(url: str, *, base_dir: Path, synchronous: str = "FULL") -> Engine:
    """Create an engine for a record-store URL; relative SQLite paths resolve against ``base_dir``.

    Raises:
        ConfigError: the URL is not a SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        raise ConfigError(f"record_store {url!r} is not a database URL") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            database = str((base_dir / database).resolve())
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed.set(database=database), pool_pre_ping=False)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so check-then-insert is atomic across processes;
            # reads use a deferred BEGIN and never block writers (WAL).
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("onshore_read") else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True)
    raise ConfigError(f"record_store {url!r}: only sqlite:/// and postgresql+psycopg:// are supported")
