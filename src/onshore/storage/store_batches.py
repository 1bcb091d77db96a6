"""Which store event committed a row: a row names its batch (``records.batch_ref``), a batch its store event.

A row cannot carry its store event's ledger index when it is written: the index is the ledger's size when the event
is appended, stable only under the region's write lock, and the rows go in before it is taken, so that writers of
one region insert in parallel and queue only to append to the ledger (`SQLRecordStore.commit_batch`,
docs/scaling.md). So a batch takes a reference first (`new_batch`, an auto-incremented key: no lock), its rows carry
it, and under the lock `assign` records its store event's index, in the same transaction. Rows stored before
revision 0010 hold the index itself in ``records.store_idx``; `STORE_IDX` over `WITH_BATCHES` reads either, which
is what readers and verification see as a row's store event.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, update

from onshore.storage.schema import records, store_batches

# ``records`` with each row's batch (readers select from this to see ``STORE_IDX``).
WITH_BATCHES = records.outerjoin(store_batches, records.c.batch_ref == store_batches.c.batch_ref)
# The ledger index of the store event that committed the row (null for a row no store event covers).
STORE_IDX = func.coalesce(records.c.store_idx, store_batches.c.store_idx).label("store_idx")


def new_batch(conn: Connection) -> int:
    """A new batch reference, in ``conn``'s transaction (its store event is not known yet)."""
    key = conn.execute(insert(store_batches).values(store_idx=None)).inserted_primary_key
    assert key is not None
    return int(key[0])


def assign(conn: Connection, batch_ref: int, store_idx: int) -> None:
    """Record the ledger index of the batch's store event (under the region's write lock)."""
    conn.execute(update(store_batches).where(store_batches.c.batch_ref == batch_ref).values(store_idx=store_idx))
