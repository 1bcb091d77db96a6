"""Stored records in and out: column batches become driver rows here, and every read of ``records`` is here.

Writers hand a ``RecordColumns`` batch to ``insert_records`` (the one place that turns it into parameter rows,
with the derived index columns of ``storage.predicates``). Readers — border selection and release, retention,
rights, ``/v1/records``, frames — pass a ``RecordFilter`` and get ``RecordRow`` named tuples (or counts), never
positions and never a ``select(records)`` of their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, func, select

from onshore.model import RECORD_COLUMNS, RecordColumns
from onshore.storage.partitioned_insert import insert_partitioned
from onshore.storage.predicates import RecordFilter, index_forms
from onshore.storage.record_keys import in_key_partition, stored_keys
from onshore.storage.schema import records
from onshore.storage.store_batches import STORE_IDX, WITH_BATCHES
from onshore.storage.writes import bulk_insert

# What an insert writes: the content columns, the row's batch (``storage.store_batches``), the derived index columns.
INSERT_COLUMNS = (*RECORD_COLUMNS, "batch_ref", "category_bits", "tag_set")
_RECORD_KEY = ("vehicle_ref", "msg_id")
_CHUNK = 500


class RecordRow(NamedTuple):
    """One stored record as readers see it: its id, its content columns and its store event's ledger index."""

    id: int
    vehicle_ref: str
    msg_id: str
    ts_ms: int
    signal: str
    value: str | None
    categories: str
    tags: str
    purpose: str
    rule_id: str
    origin: str
    zone: str | None
    received_ms: int
    subject_ref: str
    store_idx: int | None


_ROW_COLUMNS = [records.c[name] for name in RecordRow._fields[:-1]] + [STORE_IDX]


def parameter_rows(dialect: str, batch: RecordColumns, batch_ref: int | None) -> list[tuple[Any, ...]]:
    """The driver's parameter rows for ``batch``, in ``INSERT_COLUMNS`` order."""
    bits, tag_sets = index_forms(dialect, batch.categories, batch.tags)
    n = len(batch)
    return list(zip(*batch.columns(), [batch_ref] * n, bits, tag_sets, strict=True))


def insert_records(
    conn: Connection, batch: RecordColumns, batch_ref: int | None, *, skip_existing: bool = False
) -> int:
    """Insert a column batch with one ``executemany``; return how many rows were inserted.

    Args:
        batch_ref: the batch the rows belong to (`storage.store_batches.new_batch`), or None.
        skip_existing: skip rows whose (vehicle, message id) is already stored instead of failing.

    Raises:
        sqlalchemy.exc.IntegrityError: a row is already stored and ``skip_existing`` is false.
        onshore.errors.InputError: a category has no storage bit.
    """
    if conn.dialect.name == "postgresql":
        return insert_partitioned(conn, batch, batch_ref, skip_existing=skip_existing)
    return bulk_insert(
        conn,
        records,
        parameter_rows(conn.dialect.name, batch, batch_ref),
        columns=INSERT_COLUMNS,
        skip_existing_on=_RECORD_KEY if skip_existing else None,
    )


def stored_msg_ids(conn: Connection, vehicle_ref: str, msg_ids: Sequence[str]) -> set[str]:
    """Which of ``msg_ids`` the vehicle already has stored."""
    if conn.dialect.name == "postgresql":
        return stored_keys(conn, vehicle_ref, msg_ids)
    found: set[str] = set()
    for start in range(0, len(msg_ids), _CHUNK):
        chunk = list(msg_ids[start : start + _CHUNK])
        found.update(
            conn.execute(
                select(records.c.msg_id).where(records.c.vehicle_ref == vehicle_ref, records.c.msg_id.in_(chunk))
            ).scalars()
        )
    return found


def find_record(conn: Connection, vehicle_ref: str, msg_id: str) -> RecordRow | None:
    """The record a vehicle stored under ``msg_id``, or None."""
    stmt = (
        select(*_ROW_COLUMNS)
        .select_from(WITH_BATCHES)
        .where(records.c.vehicle_ref == vehicle_ref, records.c.msg_id == msg_id)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.where(in_key_partition(vehicle_ref, msg_id))
    row = conn.execute(stmt).first()
    return None if row is None else RecordRow._make(row)


def select_records(conn: Connection, where: RecordFilter, *, limit: int | None = None) -> list[RecordRow]:
    """The matching records in id order (``where.after_id`` is the cursor), at most ``limit``."""
    stmt = select(*_ROW_COLUMNS).select_from(WITH_BATCHES).where(where.where(conn.dialect.name)).order_by(records.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [RecordRow._make(row) for row in conn.execute(stmt)]


def iter_records(conn: Connection, where: RecordFilter, *, chunk: int = 20_000) -> Iterator[list[RecordRow]]:
    """The matching records in id order, ``chunk`` at a time (keyset pages: each page one indexed query)."""
    condition = where.where(conn.dialect.name)
    after = where.after_id
    while True:
        stmt = (
            select(*_ROW_COLUMNS)
            .select_from(WITH_BATCHES)
            .where(condition, records.c.id > after)
            .order_by(records.c.id)
            .limit(chunk)
        )
        rows = [RecordRow._make(row) for row in conn.execute(stmt)]
        if not rows:
            return
        yield rows
        after = rows[-1].id


def count_records(conn: Connection, where: RecordFilter) -> int:
    """How many records match."""
    stmt = select(func.count()).select_from(records).where(where.where(conn.dialect.name))
    return int(conn.execute(stmt).scalar() or 0)


def count_subjects(conn: Connection, where: RecordFilter, *, excluding: Select[Any] | None = None) -> int:
    """How many distinct subjects the matching records are about, leaving out those ``excluding`` selects.

    Args:
        excluding: a one-column select of subject refs (e.g. people a feature already counted).
    """
    condition = where.where(conn.dialect.name)
    if excluding is not None:
        condition = condition & records.c.subject_ref.not_in(excluding)
    stmt = select(func.count(func.distinct(records.c.subject_ref))).where(condition)
    return int(conn.execute(stmt).scalar() or 0)


def group_counts(
    conn: Connection, where: RecordFilter, by: Sequence[str], *, distinct_subjects: bool = False
) -> list[tuple[Any, ...]]:
    """``(*values of by, count)`` per group of matching records; with ``distinct_subjects`` the count is people.

    ``by`` names columns of ``RECORD_COLUMNS``.
    """
    keys = [records.c[name] for name in by]
    counted = func.count(func.distinct(records.c.subject_ref)) if distinct_subjects else func.count()
    stmt = select(*keys, counted).where(where.where(conn.dialect.name)).group_by(*keys)
    return [tuple(row) for row in conn.execute(stmt)]
