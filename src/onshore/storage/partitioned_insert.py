"""The insert of records on PostgreSQL: into the month partitions, de-duplicated by ``record_keys``.

Three steps in the caller's transaction: the partitions of the months the batch touches (``storage.partitions``),
the batch's keys claimed in ``record_keys`` (``storage.record_keys``: a resend is a duplicate whatever its time),
then the claimed rows in one ``INSERT ... SELECT FROM unnest(...)``: each column of the batch travels as one
array, so the server routes the rows to their partitions once per batch, not once per row as an ``executemany``
of single-row inserts would (a third of the insert's time on a partitioned table). ``tag_set`` is made from
``tags`` in SQL (``string_to_array``, what ``predicates.tag_set_postgres`` makes in Python; the content check
compares the two), since an array of arrays of different lengths cannot be one parameter.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from onshore.model import RecordColumns
from onshore.storage.partitions import ensure_partitions
from onshore.storage.predicates import category_bits
from onshore.storage.record_keys import claim_keys

_TYPES = {
    "vehicle_ref": "TEXT",
    "msg_id": "TEXT",
    "ts_ms": "BIGINT",
    "signal": "TEXT",
    "value": "TEXT",
    "categories": "TEXT",
    "tags": "TEXT",
    "purpose": "TEXT",
    "rule_id": "TEXT",
    "origin": "TEXT",
    "zone": "TEXT",
    "received_ms": "BIGINT",
    "subject_ref": "TEXT",
    "category_bits": "SMALLINT",
}
_INSERT = text(
    f"INSERT INTO records ({', '.join(_TYPES)}, batch_ref, tag_set)"
    f" SELECT {', '.join(_TYPES)}, CAST(:batch_ref AS BIGINT),"
    " CASE WHEN tags = '' THEN CAST('{}' AS TEXT[]) ELSE string_to_array(tags, ',') END"
    f" FROM unnest({', '.join(f'CAST(:{name} AS {kind}[])' for name, kind in _TYPES.items())})"
    f" AS batch ({', '.join(_TYPES)})"
)


def insert_partitioned(conn: Connection, batch: RecordColumns, batch_ref: int | None, *, skip_existing: bool) -> int:
    """Insert a column batch on PostgreSQL; return how many rows were inserted (see ``records.insert_records``).

    Raises:
        sqlalchemy.exc.IntegrityError: a row's key is already stored and ``skip_existing`` is false.
        onshore.errors.InputError: a category has no storage bit.
    """
    if not len(batch):
        return 0
    bits = [category_bits(cats) for cats in batch.categories]  # refuses an unknown category before any write
    ensure_partitions(conn, batch.ts_ms)
    keep = claim_keys(conn, batch.vehicle_ref, batch.msg_id, batch.ts_ms, skip_existing=skip_existing)
    if len(keep) != len(batch):
        if not keep:
            return 0
        batch, bits = batch.take(keep), [bits[i] for i in keep]
    params = {name: batch.column(name) for name in _TYPES if name != "category_bits"}
    conn.execute(_INSERT, {**params, "category_bits": bits, "batch_ref": batch_ref})
    return len(batch)
