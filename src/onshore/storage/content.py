"""Content commitments: what a ledger ``store`` or ``delete`` event says about the rows it concerns.

A ``store`` event commits to the rows it stored *as written* (ciphertext included): each row is encoded
canonically (the JSON array of its content columns, in ``RECORD_COLUMNS`` order) and hashed with SHA-256;
the event's digest is SHA-256 over the sorted row digests. Every row names its store event (its batch's, through
``storage.store_batches``), so verification can group the live rows of a batch and re-derive its digest.
The derived index columns (``category_bits``, ``tag_set``: ``storage.predicates``) are not content (rows stored
before they existed verify unchanged); verification checks that they still agree with the content.

Rows leave only with a ``delete`` event (retention, erasure, a whole month partition dropped by retention on
PostgreSQL: ``storage.partitions``): the deleting transaction writes one tombstone per row (its store event's
index and its row digest, nothing else) and the delete event's digest commits to those tombstones. A batch
verifies when its live rows plus its tombstones re-derive the committed digest; an edited value, time, category
or origin, or a row removed without a delete event, breaks it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, delete, select

from onshore.model import RECORD_COLUMNS, LifecycleEvent
from onshore.storage.predicates import RecordFilter, index_forms
from onshore.storage.record_keys import forget_keys
from onshore.storage.schema import record_tombstones, records
from onshore.storage.store_batches import STORE_IDX, WITH_BATCHES
from onshore.storage.writes import bulk_insert

if TYPE_CHECKING:
    from onshore.storage.sql import EventJournal

CONTENT_COLUMNS = RECORD_COLUMNS
CONTENT_EVENT_VERSION = 2  # the ``v`` of store and delete events whose digest commits to row content
_DELETE_CHUNK = 500
_VEHICLE_AT, _MSG_AT = CONTENT_COLUMNS.index("vehicle_ref"), CONTENT_COLUMNS.index("msg_id")


def row_digest(values: Sequence[Any]) -> bytes:
    """SHA-256 of one row's canonical encoding: the JSON array of its ``CONTENT_COLUMNS`` values."""
    # orjson encodes a tuple exactly as the list it holds: no copy per row on the ingest path
    return hashlib.sha256(orjson.dumps(values if isinstance(values, tuple | list) else list(values))).digest()


def set_digest(digests: Iterable[bytes]) -> str:
    """Hex SHA-256 over a set of row digests, sorted (so the order rows are read back in does not matter)."""
    # hashing the concatenation is hashing them one by one in that order, in one call
    return hashlib.sha256(b"".join(sorted(digests))).hexdigest()


def batch_digest(columns: Sequence[Sequence[Any]]) -> str:
    """``set_digest`` of the row digests of a column batch (``CONTENT_COLUMNS`` order): the ingest hot path.

    The same digest as ``set_digest(map(row_digest, zip(*columns)))``, without a Python call per row.
    """
    sha256, dumps = hashlib.sha256, orjson.dumps
    return set_digest([sha256(dumps(row)).digest() for row in zip(*columns, strict=True)])


def content_row(row: Any) -> tuple[Any, ...]:
    """The content columns of a row read from ``records`` (a SQLAlchemy row or mapping)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return tuple(mapping[c] for c in CONTENT_COLUMNS)


def live_row_digests(conn: Connection, *, page: int = 10_000) -> Iterator[tuple[int | None, bytes, bool]]:
    """``(store_idx, row digest, index columns agree)`` of every stored row, ordered by store event.

    The third item is False when the row's derived index columns (``category_bits``, ``tag_set``) no longer
    say what its content says: filters would then find or miss it wrongly although its content is intact.
    """
    dialect = conn.dialect.name
    columns = [records.c[c] for c in CONTENT_COLUMNS]
    stmt = (
        select(STORE_IDX, records.c.category_bits, records.c.tag_set, *columns)
        .select_from(WITH_BATCHES)
        .order_by(STORE_IDX, records.c.id)
    )
    cats_at, tags_at = 3 + CONTENT_COLUMNS.index("categories"), 3 + CONTENT_COLUMNS.index("tags")
    for chunk in conn.execution_options(yield_per=page).execute(stmt).partitions():
        for row in chunk:
            bits, tag_sets = index_forms(dialect, [row[cats_at]], [row[tags_at]], strict=False)
            yield row[0], row_digest(row[3:]), (row[1], row[2]) == (bits[0], tag_sets[0])


def tombstones(conn: Connection) -> list[tuple[int, int, bytes]]:
    """``(store_idx, delete_idx, row digest)`` of every row removed with a delete event."""
    t = record_tombstones
    stmt = select(t.c.store_idx, t.c.delete_idx, t.c.row_digest).order_by(t.c.store_idx)
    return [(int(s), int(d), bytes(h)) for s, d, h in conn.execute(stmt)]


def delete_records(
    conn: Connection,
    where: RecordFilter,
    journal: EventJournal,
    make_event: Callable[[int, str | None], LifecycleEvent],
) -> tuple[int, int | None]:
    """Delete the records ``where`` selects with one delete event that commits to them, in ``conn``'s transaction.

    Each row covered by a store event leaves a tombstone (its store event's index and row digest); the event
    built by ``make_event(rows deleted, digest of the tombstones)`` is appended only when a row was deleted.

    Returns:
        ``(rows deleted, ledger index of the delete event or None)``.
    """
    columns = [records.c[c] for c in CONTENT_COLUMNS]
    stmt = select(records.c.id, STORE_IDX, *columns).select_from(WITH_BATCHES).where(where.where(conn.dialect.name))
    rows = conn.execute(stmt).all()
    if not rows:
        return 0, None
    ids = [row[0] for row in rows]
    covered = [(int(row[1]), row_digest(row[2:])) for row in rows if row[1] is not None]
    for start in range(0, len(ids), _DELETE_CHUNK):
        conn.execute(delete(records).where(records.c.id.in_(ids[start : start + _DELETE_CHUNK])))
    forget_keys(conn, [(row[2 + _VEHICLE_AT], row[2 + _MSG_AT]) for row in rows])
    return len(rows), commit_deletion(conn, len(rows), covered, journal, make_event)


def commit_deletion(
    conn: Connection,
    deleted: int,
    covered: Sequence[tuple[int, bytes]],
    journal: EventJournal,
    make_event: Callable[[int, str | None], LifecycleEvent],
) -> int:
    """Append the delete event of ``deleted`` removed rows and the tombstones of those ``covered``; its index.

    Args:
        covered: ``(store event index, row digest)`` of each removed row that a store event committed to.
    """
    event = make_event(deleted, set_digest(d for _, d in covered) if covered else None)
    index = journal.append(conn, [event.to_bytes()])
    if covered:
        bulk_insert(
            conn,
            record_tombstones,
            [(s, index, d) for s, d in covered],
            columns=("store_idx", "delete_idx", "row_digest"),
        )
    return index


def with_store_counts(event_: LifecycleEvent, accepted: int, duplicate: int, content: str) -> LifecycleEvent:
    """The store event with what the transaction stored: counts and the digest of the rows' content."""
    if event_.kind != "store":
        return event_
    return dataclasses.replace(
        event_,
        counts={"stored": accepted, "duplicate": duplicate},
        digest=content,
        version=CONTENT_EVENT_VERSION,
    )
