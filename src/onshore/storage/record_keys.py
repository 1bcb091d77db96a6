"""De-duplication of records on PostgreSQL: the ``record_keys`` table beside the partitioned ``records``.

A partitioned table's unique constraints must hold its partition key, so ``UNIQUE (vehicle_ref, msg_id)`` on
``records`` itself could only say "unique per time", and a resend with another ``ts`` would be stored twice. The
key table is not partitioned: its primary key is the (vehicle, message id) of every stored record, whatever its
time, exactly what the constraint on SQLite's ``records`` says. An insert claims its keys here first
(``INSERT ... ON CONFLICT DO NOTHING RETURNING``) and stores only the rows it claimed; every delete of records
removes their keys in the same transaction (``storage.content.delete_records``, ``storage.partitions``), so a row
deleted by retention or erasure may be sent again, as on SQLite. ``ts_ms`` leads a lookup by key to the one
partition holding the record.

On SQLite every function here is a no-op or answers from ``records``' own constraint; callers never branch.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, and_, delete, select, text, tuple_

from onshore.storage.predicates import category_masks
from onshore.storage.schema import record_keys, records

_CHUNK = 500
_CLAIM = (
    "INSERT INTO record_keys (vehicle_ref, msg_id, ts_ms)"
    " SELECT * FROM unnest(CAST(:vehicles AS TEXT[]), CAST(:msg_ids AS TEXT[]), CAST(:ts AS BIGINT[]))"
)
_CLAIM_NEW = text(_CLAIM + " ON CONFLICT (vehicle_ref, msg_id) DO NOTHING RETURNING vehicle_ref, msg_id")
_CLAIM_ALL = text(_CLAIM)
_ANY_CATEGORY = category_masks()  # every stored category_bits value


def claim_keys(
    conn: Connection, vehicle_refs: Sequence[str], msg_ids: Sequence[str], ts_ms: Sequence[int], *, skip_existing: bool
) -> list[int]:
    """Claim the keys of a batch's rows (PostgreSQL); return the positions of the rows to store, in order.

    One statement for the whole batch. With ``skip_existing`` a key already stored (or earlier in the same batch)
    is not claimed and its row is left out; without it such a key fails the statement.

    Raises:
        sqlalchemy.exc.IntegrityError: a key is already stored and ``skip_existing`` is false.
    """
    params = {"vehicles": list(vehicle_refs), "msg_ids": list(msg_ids), "ts": list(ts_ms)}
    if not skip_existing:
        conn.execute(_CLAIM_ALL, params)
        return list(range(len(msg_ids)))
    claimed = set(map(tuple, conn.execute(_CLAIM_NEW, params)))
    if len(claimed) == len(msg_ids):
        return list(range(len(msg_ids)))
    keep = []
    for i, key in enumerate(zip(vehicle_refs, msg_ids, strict=True)):
        if key in claimed:  # the first row of a key claimed it; a repeat later in the batch is a duplicate
            claimed.discard(key)
            keep.append(i)
    return keep


def stored_keys(conn: Connection, vehicle_ref: str, msg_ids: Sequence[str]) -> set[str]:
    """Which of ``msg_ids`` the vehicle has stored, from ``record_keys`` (PostgreSQL)."""
    found: set[str] = set()
    t = record_keys
    for start in range(0, len(msg_ids), _CHUNK):
        chunk = list(msg_ids[start : start + _CHUNK])
        found.update(
            conn.execute(select(t.c.msg_id).where(t.c.vehicle_ref == vehicle_ref, t.c.msg_id.in_(chunk))).scalars()
        )
    return found


def in_key_partition(vehicle_ref: str, msg_id: str) -> ColumnElement[bool]:
    """The condition on ``records`` that leads a lookup by key to its one partition and an index (PostgreSQL).

    ``ts_ms`` comes from the key (a scalar subquery: PostgreSQL prunes the other partitions when it runs), and
    ``category_bits IN (every mask)`` lets ``ix_records_category_ts`` serve ``ts_ms =`` (there is no index on
    the key in ``records``).
    """
    t = record_keys
    ts = select(t.c.ts_ms).where(t.c.vehicle_ref == vehicle_ref, t.c.msg_id == msg_id).scalar_subquery()
    return and_(records.c.ts_ms == ts, records.c.category_bits.in_(_ANY_CATEGORY))


def forget_keys(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Remove the keys of deleted records, so they may be sent again (PostgreSQL; SQLite: nothing to do)."""
    if conn.dialect.name != "postgresql":
        return
    t = record_keys
    for start in range(0, len(keys), _CHUNK):
        conn.execute(delete(t).where(tuple_(t.c.vehicle_ref, t.c.msg_id).in_(list(keys[start : start + _CHUNK]))))


def forget_partition_keys(conn: Connection, partition: str) -> int:
    """Remove the keys of every record in the partition table ``partition`` (before it is dropped)."""
    # ``partition`` is a name storage.partitions made from a month, never input
    result = conn.exec_driver_sql(
        f"DELETE FROM record_keys AS k USING {partition} AS r"
        " WHERE k.vehicle_ref = r.vehicle_ref AND k.msg_id = r.msg_id AND k.ts_ms = r.ts_ms"
    )
    return int(result.rowcount)
