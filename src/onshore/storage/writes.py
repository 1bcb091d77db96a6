"""The few write operations features need, the same call on SQLite and PostgreSQL.

Feature packages (ledger, border, vision...) never branch on a dialect or a driver's parameter style; they call
these. Every function works inside the caller's ``Connection`` and transaction and never commits.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from onshore.errors import StorageError

# SQLSTATEs after which PostgreSQL expects the whole transaction to be run again.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:key)")


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    skip_existing_on: Sequence[str] | None = None,
) -> int:
    """Insert positional rows with one driver ``executemany``; return how many rows were inserted.

    It goes to the driver directly: SQLAlchemy's per-row parameter processing was half the cost of a ledger
    append, so values must already be what the driver takes (str, int, bytes, None).

    Args:
        conn: a connection inside the caller's transaction.
        table: the table to insert into.
        rows: one tuple per row, in the order of ``columns``.
        columns: the columns the tuples fill (default: every column of ``table``, in its order).
        skip_existing_on: columns of a unique constraint; a row that collides with a stored one is skipped
            (``ON CONFLICT (...) DO NOTHING``) instead of failing the statement, and not counted.

    Raises:
        sqlalchemy.exc.IntegrityError: a row violates a constraint (the caller's store translates it).
    """
    if not rows:
        return 0
    names = tuple(columns) if columns is not None else tuple(c.name for c in table.columns)
    conflict = tuple(skip_existing_on) if skip_existing_on else None
    statement = _insert_statement(table.name, names, _marker(conn.dialect.paramstyle), conflict)
    if statement is None:  # a driver whose parameter style we do not write by hand: the Core path
        insert: Any = table.insert()
        if conflict is not None:
            insert = _dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(conflict))
        result = conn.execute(insert, [dict(zip(names, row, strict=True)) for row in rows])
    else:
        result = conn.exec_driver_sql(statement, list(rows))
    return int(result.rowcount)


def upsert_increment(
    conn: Connection,
    table: Table,
    key_values: Mapping[str, Any],
    increments: Mapping[str, int],
    set_values: Mapping[str, Any] | None = None,
    *,
    insert_only: Mapping[str, Any] | None = None,
) -> None:
    """Add to counters of the row with ``key_values``, creating the row when it does not exist, in one statement.

    ``INSERT ... ON CONFLICT (keys) DO UPDATE SET col = col + n``: a new row starts at the increments.

    Args:
        conn: a connection inside the caller's transaction.
        table: a table with a unique constraint (or primary key) over exactly the ``key_values`` columns.
        key_values: the row's key.
        increments: column → amount added (the initial value of a new row).
        set_values: columns set to these values on insert and on update (a "last seen" time).
        insert_only: columns written only when the row is created (a "first seen" time).

    Raises:
        StorageError: the connection's database is neither SQLite nor PostgreSQL.
    """
    values = {**(insert_only or {}), **(set_values or {}), **increments, **key_values}
    updates: dict[str, Any] = {name: table.c[name] + amount for name, amount in increments.items()}
    updates.update(set_values or {})
    statement = _dialect_insert(conn, table).values(values)
    conn.execute(statement.on_conflict_do_update(index_elements=list(key_values), set_=updates))


def region_lock_key(region: str) -> int:
    """The stable signed 64-bit advisory-lock key of ``region``'s write lock (the same on every machine)."""
    digest = hashlib.sha256(f"onshore-region-write:{region}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def region_write_lock(conn: Connection, region: str) -> None:
    """Hold the write lock of ``region`` until the caller's transaction ends; wait while another holds it.

    PostgreSQL: a transaction-scoped advisory lock on :func:`region_lock_key`, so every process and machine
    writing the region queues here, and each statement after it sees what the previous holder committed
    (READ COMMITTED). SQLite: nothing to do, the transaction's ``BEGIN IMMEDIATE`` already holds the database's
    write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_SQL, {"key": region_lock_key(region)})


def is_retryable(exc: BaseException) -> bool:
    """Whether the database failed a transaction only because of a concurrent one (run it again as a whole)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRYABLE_SQLSTATES


def _marker(paramstyle: str) -> str | None:
    return {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(paramstyle)


@functools.lru_cache(maxsize=64)
def _insert_statement(
    table: str, columns: tuple[str, ...], marker: str | None, conflict: tuple[str, ...] | None
) -> str | None:
    if marker is None:
        return None
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    if conflict is not None:
        statement += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    return statement


def _dialect_insert(conn: Connection, table: Table) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return pg_insert(table)
    if name == "sqlite":
        return sqlite_insert(table)
    raise StorageError(f"database dialect {name!r} is not supported; use SQLite or PostgreSQL")
