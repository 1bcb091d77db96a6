"""Batches committed once: the ``processed_batches`` table a bus worker writes with each batch it stores.

A message queue delivers at least once: a worker killed after its commit and before its acknowledgement gets the
same batch again (or another worker does). Records alone would survive that (they are unique by vehicle and
message id), but the batch's collect and store events and its counters would not. So a worker commits a batch
with a claim on its ``batch_id`` (`BatchClaim`): in the same transaction as the rows and events, the claim is
checked (`claim`, raising `AlreadyProcessedError` with the stored answer) before the rows go in and again under
the region write lock, then written (`record_processed`) with the answer the batch got. A redelivery is then
answered from the row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Connection, delete, select

from onshore.errors import AlreadyProcessedError
from onshore.storage.schema import processed_batches

R = TypeVar("R")


@dataclass(frozen=True)
class BatchClaim(Generic[R]):
    """Commit the batch ``batch_id`` at most once, storing ``outcome(result)`` as its answer.

    Attributes:
        batch_id: the batch's id (the bus message id).
        at_ms: when it is processed (what pruning goes by).
        outcome: the batch's answer (JSON text) from what the transaction did; called inside the transaction,
            so it must be pure (a transaction run again calls it again).
    """

    batch_id: str
    at_ms: int
    outcome: Callable[[R], str]


def processed_outcome(conn: Connection, batch_id: str) -> str | None:
    """The stored answer of batch ``batch_id``, or None when no worker committed it."""
    row = conn.execute(select(processed_batches.c.outcome).where(processed_batches.c.batch_id == batch_id)).first()
    return None if row is None else str(row[0])


def processed_outcomes(conn: Connection, batch_ids: Sequence[str]) -> dict[str, str]:
    """The stored answers of those of ``batch_ids`` a worker committed, by batch id (one query)."""
    rows = conn.execute(
        select(processed_batches.c.batch_id, processed_batches.c.outcome).where(
            processed_batches.c.batch_id.in_(list(batch_ids))
        )
    )
    return {str(batch_id): str(outcome) for batch_id, outcome in rows}


def claim(conn: Connection, batch_id: str) -> None:
    """Check, inside a write transaction, that batch ``batch_id`` is not committed yet (authoritative under the
    region lock, which the committing transaction held until its commit).

    Raises:
        AlreadyProcessedError: it is; the error carries the stored answer (the transaction must roll back).
    """
    outcome = processed_outcome(conn, batch_id)
    if outcome is not None:
        raise AlreadyProcessedError(outcome)


def record_processed(conn: Connection, claimed: BatchClaim[R], result: R) -> None:
    """Write the claimed batch's row with its answer, in the caller's transaction (after `claim`)."""
    conn.execute(
        processed_batches.insert().values(
            batch_id=claimed.batch_id, processed_ms=claimed.at_ms, outcome=claimed.outcome(result)
        )
    )


def prune_processed(conn: Connection, before_ms: int) -> int:
    """Delete the rows of batches processed before ``before_ms``; returns how many."""
    return int(conn.execute(delete(processed_batches).where(processed_batches.c.processed_ms < before_ms)).rowcount)
