"""The record store of one region: SQLite (embedded) or PostgreSQL (distributed), via SQLAlchemy Core.

Only this package talks to database drivers; their errors are translated into ``StorageError`` here.
A store knows its jurisdiction and refuses rows of another origin (defence in depth behind the router).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from onshore.errors import (
    AlreadyProcessedError,
    ConflictError,
    OnshoreError,
    ResidencyError,
    StorageError,
    WriteConflictError,
)
from onshore.model import LifecycleEvent, RecordColumns, StoredRows
from onshore.storage.content import batch_digest, with_store_counts
from onshore.storage.engine import make_engine as make_engine  # re-exported: where callers always found it
from onshore.storage.processed import (
    BatchClaim,
    claim,
    processed_outcome,
    processed_outcomes,
    prune_processed,
    record_processed,
)
from onshore.storage.record_reads import RecordReads
from onshore.storage.records import insert_records, stored_msg_ids
from onshore.storage.schema import (
    unclassified_signals,
)
from onshore.storage.store_batches import assign, new_batch
from onshore.storage.vehicle_rows import VehicleRows
from onshore.storage.writes import is_retryable, region_write_lock, upsert_increment

# A write that lost to a concurrent one runs again (this many attempts in all, jittered pauses): under the region
# lock a loss is rare (a process without the lock in a rolling upgrade, a deadlock across regions of one database).
_ATTEMPTS = 6
_BACKOFF_S = 0.005

T = TypeVar("T")


class EventJournal(Protocol):
    """Where lifecycle events go, inside the caller's transaction (the ledger implements this)."""

    def append(self, conn: Connection, entries: list[bytes]) -> int:
        """Append entries in order; return the index of the first."""
        ...

    def tree_size(self, conn: Connection) -> int:
        """How many entries the journal holds (the index the next append gets)."""
        ...


class _SomeAlreadyStored(Exception):
    """Internal: an optimistic insert met rows stored earlier."""


@dataclass(frozen=True)
class CommitResult:
    accepted: int
    duplicate: int
    ledger_index: int | None
    by_category: dict[str, int]  # of the rows actually inserted


class BatchCommit(NamedTuple):
    """One batch of a group commit (`SQLRecordStore.commit_batches`): what `SQLRecordStore.commit_batch` takes."""

    stored: StoredRows
    events: Sequence[LifecycleEvent]
    once: BatchClaim[CommitResult] | None = None


class _Staged(NamedTuple):
    """A batch whose claim and rows are written, waiting for the region's write lock (`SQLRecordStore._stage`)."""

    batch: BatchCommit
    fresh: RecordColumns  # the rows inserted
    store_at: int | None  # the position of the store event among the batch's events
    batch_ref: int | None  # the rows' batch reference (None: no rows, or no store event)


class SQLRecordStore(VehicleRows, RecordReads):
    """Rows, vehicles, consents and the event journal of one region."""

    def __init__(self, engine: Engine, *, region: str, jurisdiction: str, journal: EventJournal):
        self.engine = engine
        self.region = region
        self.jurisdiction = jurisdiction
        # Every lifecycle event goes to the region's journal (the Merkle ledger, injected by whoever assembles the
        # region), in the same transaction as its data.
        self.journal = journal
        # The region write lock (see ``transaction``) is what serialises writers; this one only queues the
        # process's own threads before they take a pooled connection to wait on it (or on SQLite's busy handler).
        # A PostgreSQL ingest (``locked=False``) skips it: its threads write their rows side by side.
        self._write_lock = threading.Lock()

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise ConflictError(f"region {self.region}: {what}: already exists") from exc
        except SQLAlchemyError as exc:
            if is_retryable(exc):
                raise WriteConflictError(
                    f"region {self.region}: {what} lost to a concurrent transaction ({exc.__class__.__name__}); "
                    "run it again"
                ) from exc
            raise StorageError(
                f"region {self.region}: record store failed during {what} ({exc.__class__.__name__})"
            ) from exc

    @contextlib.contextmanager
    def transaction(self, what: str, *, locked: bool = True) -> Iterator[Connection]:
        """One write transaction of the region, holding the region's write lock from its first statement (or from
        where the work takes it: ``locked``).

        Every process and machine writing the region queues on that lock (SQLite: ``BEGIN IMMEDIATE``;
        PostgreSQL: an advisory lock), so ledger appends, border releases and counters never interleave.

        Args:
            locked: False: the work takes the lock itself (`region_write_lock`) once it has written what needs no
                order (an ingest's rows: `_stage`); on SQLite the transaction holds the database's lock anyway.

        Raises:
            WriteConflictError: a concurrent transaction won anyway (see ``write``, which retries).
            ConflictError: a unique constraint refused a row.
            StorageError: the database failed.
        """
        side_by_side = not locked and self.engine.dialect.name == "postgresql"
        queue = contextlib.nullcontext() if side_by_side else self._write_lock
        with queue, self._translate(what), self.engine.begin() as conn:
            if locked:
                region_write_lock(conn, self.region)
            yield conn

    def write(self, what: str, work: Callable[[Connection], T], *, locked: bool = True) -> T:
        """Run ``work`` in one write transaction, and run it again on a write conflict (bounded, jittered).

        ``work`` must be safe to repeat: everything it did is rolled back before the next attempt, so it must not
        change its inputs or state outside the transaction.

        Raises:
            WriteConflictError: every attempt lost to a concurrent transaction (503, the client retries later).
            Whatever ``work`` or ``transaction`` raises otherwise, at the first attempt that raises it.
        """
        for attempt in range(1, _ATTEMPTS):
            try:
                with self.transaction(what, locked=locked) as conn:
                    return work(conn)
            except WriteConflictError:
                time.sleep(random.uniform(0, _BACKOFF_S * 2**attempt))
        with self.transaction(what, locked=locked) as conn:  # the last attempt: its conflict reaches the caller
            return work(conn)

    def read(self, what: str) -> contextlib.AbstractContextManager[Connection]:
        return _ReadConnection(self, what)

    # -- ingest -------------------------------------------------------------------------------

    def commit_batch(
        self,
        stored: StoredRows,
        events: Sequence[LifecycleEvent],
        *,
        once: BatchClaim[CommitResult] | None = None,
    ) -> CommitResult:
        """Insert the rows not already stored, and append ``events``, in one transaction.

        The store event gets the accepted count and the digest of the accepted record ids. Safe to retry:
        ``stored`` and ``events`` are only read, so a transaction run again counts duplicates the same way.

        Args:
            once: a bus batch's claim: the transaction first checks that no worker committed the batch before and
                writes its answer with the rows (`onshore.storage.processed`).

        Raises:
            AlreadyProcessedError: with ``once``, the batch was committed before; nothing was written.
            ResidencyError: a row's origin is not this store's jurisdiction.
            WriteConflictError: every retry lost to a concurrent writer (see ``write``).
        """
        self._check_origin(stored)
        batch = BatchCommit(stored, events, once)
        try:
            return self.write(
                "ingest batch", lambda conn: self._commit(conn, [batch], optimistic=True)[0], locked=False
            )
        except _SomeAlreadyStored:
            # Rare (resends): redo the batch knowing which rows exist, for exact counts and digests.
            return self.write(
                "ingest batch", lambda conn: self._commit(conn, [batch], optimistic=False)[0], locked=False
            )

    def commit_batches(self, batches: Sequence[BatchCommit]) -> list[CommitResult | OnshoreError]:
        """Commit several batches in one transaction, with what `commit_batch` would give each, one after another.

        In order, each batch's claim, rows, events and answer (its store event's index is the journal's size after
        the batches before it): the rows, counts, digests and ledger of one-by-one commits, in one lock hold. When a
        batch was committed before, or a row of it was stored before (a redelivery or a resend, also one earlier in
        the group), the group rolls back and its batches are committed one by one, each with its exact outcome.

        Returns:
            per batch, in order: its result, or the `AlreadyProcessedError` (stored answer) or `ResidencyError`
            `commit_batch` raises for it (nothing written of that batch).

        Raises:
            WriteConflictError, StorageError: the database failed; batches committed one by one before the failure
                stay committed (their claims answer them when they come again).
        """
        results: list[CommitResult | OnshoreError | None] = [None] * len(batches)
        todo: list[int] = []
        for i, batch in enumerate(batches):
            try:
                self._check_origin(batch.stored)
                todo.append(i)
            except ResidencyError as exc:
                results[i] = exc

        def group(conn: Connection) -> list[CommitResult | OnshoreError]:
            return list(self._commit(conn, [batches[i] for i in todo], optimistic=True))

        committed: list[CommitResult | OnshoreError]
        try:
            committed = self.write("ingest batches", group, locked=False) if todo else []
        except (AlreadyProcessedError, _SomeAlreadyStored):
            committed = [self._commit_or_answer(batches[i]) for i in todo]
        for i, result in zip(todo, committed, strict=True):
            results[i] = result
        return [r for r in results if r is not None]

    def _commit_or_answer(self, batch: BatchCommit) -> CommitResult | OnshoreError:
        try:
            return self.commit_batch(batch.stored, batch.events, once=batch.once)
        except AlreadyProcessedError as exc:
            return exc

    def _check_origin(self, stored: StoredRows) -> None:
        origins = set(stored.records.origin) | {stored.origin}
        if origins != {self.jurisdiction}:
            raise ResidencyError(
                f"region {self.region} ({self.jurisdiction}) refused rows of origin "
                f"{sorted(origins - {self.jurisdiction})}"
            )

    def _commit(self, conn: Connection, batches: Sequence[BatchCommit], *, optimistic: bool) -> list[CommitResult]:
        """Stage every batch (claims and rows: no lock), then take the region's write lock and conclude each."""
        staged = [self._stage(conn, batch, optimistic=optimistic) for batch in batches]
        region_write_lock(conn, self.region)
        return [self._conclude(conn, batch) for batch in staged]

    def _stage(self, conn: Connection, batch: BatchCommit, *, optimistic: bool) -> _Staged:
        """What a batch writes before the region's write lock: its claim, and its rows under a new batch reference.

        Writers of the region run this in parallel: rows need no order, and a second writer of the same claim or
        row key waits for the first to end, then finds it (`AlreadyProcessedError`, or a duplicate).
        """
        stored, events, once = batch
        if once is not None:
            claim(conn, once.batch_id)
        fresh = stored.records
        store_at = next((i for i, e in enumerate(events) if e.kind == "store"), None)
        if len(fresh) and not optimistic:
            existing = stored_msg_ids(conn, stored.vehicle.ref, fresh.msg_id)
            if existing:
                fresh = fresh.take([i for i, m in enumerate(fresh.msg_id) if m not in existing])
        batch_ref = new_batch(conn) if store_at is not None and len(fresh) else None
        if len(fresh) and insert_records(conn, fresh, batch_ref, skip_existing=True) != len(fresh):
            if optimistic:
                raise _SomeAlreadyStored  # rolls the transaction back
            # A concurrent writer stored one of these rows since they were looked up: run the transaction again.
            raise WriteConflictError(f"region {self.region}: ingest batch met rows stored meanwhile; run it again")
        return _Staged(batch, fresh, store_at, batch_ref)

    def _conclude(self, conn: Connection, staged: _Staged) -> CommitResult:
        """Under the region's write lock: the store event's index for the rows, the events, the batch's answer."""
        (stored, events, once), fresh, store_at, batch_ref = staged
        if once is not None:
            # Again under the lock: a second worker with the same batch and no rows to wait on (all refused for
            # consent, say) staged beside the first; it finds the first's answer now that the first has committed.
            claim(conn, once.batch_id)
        # Under the lock the journal's size is stable: the store event's index is known before it is appended, and
        # the batch records it, so verification can re-derive the event's content digest from the batch's rows.
        if batch_ref is not None and store_at is not None:
            assign(conn, batch_ref, self.journal.tree_size(conn) + store_at)
        duplicate = len(stored.records) - len(fresh)
        by_category = stored.by_category if not duplicate else _count_categories(fresh.categories)
        if stored.unclassified_signals:
            self._note_unclassified(conn, stored.unclassified_signals, stored.received_ms)
        content = batch_digest(fresh.columns())
        entries = [with_store_counts(e, len(fresh), duplicate, content) for e in events]
        index = self.journal.append(conn, [e.to_bytes() for e in entries]) if entries else None
        result = CommitResult(accepted=len(fresh), duplicate=duplicate, ledger_index=index, by_category=by_category)
        if once is not None:
            record_processed(conn, once, result)
        return result

    def processed_outcome(self, batch_id: str) -> str | None:
        """The answer stored when a bus worker committed batch ``batch_id``, or None (`onshore.storage.processed`)."""
        with self.read("look up a processed batch") as conn:
            return processed_outcome(conn, batch_id)

    def processed_outcomes(self, batch_ids: Sequence[str]) -> dict[str, str]:
        """The stored answers of those of ``batch_ids`` a bus worker committed, by batch id (one read)."""
        with self.read("look up processed batches") as conn:
            return processed_outcomes(conn, batch_ids)

    def prune_processed(self, before_ms: int) -> int:
        """Forget the batches committed before ``before_ms`` (their messages can no longer be redelivered)."""
        return self.write("prune processed batches", lambda conn: prune_processed(conn, before_ms))

    def ping(self) -> None:
        """One round trip to the database.

        Raises:
            StorageError: it cannot be reached.
        """
        with self.read("health check") as conn:
            conn.execute(text("SELECT 1"))

    def append_events(self, events: Sequence[LifecycleEvent]) -> int:
        """Append lifecycle events on their own (queries, consent changes...)."""
        entries = [e.to_bytes() for e in events]
        return self.write("append events", lambda conn: self.journal.append(conn, entries))

    def _note_unclassified(self, conn: Connection, signals: list[str], now_ms: int) -> None:
        for signal in signals:
            upsert_increment(
                conn,
                unclassified_signals,
                {"signal": signal},
                {"batches": 1},
                {"last_seen_ms": now_ms},
                insert_only={"first_seen_ms": now_ms},
            )

    def dispose(self) -> None:
        self.engine.dispose()


class _ReadConnection:
    def __init__(self, store: SQLRecordStore, what: str) -> None:
        self._store = store
        self._what = what
        self._conn: Connection | None = None
        self._translate: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> Connection:
        self._translate = self._store._translate(self._what)
        self._translate.__enter__()
        try:
            self._conn = self._store.engine.connect().execution_options(onshore_read=True)
        except BaseException as exc:  # a failed connect is a driver error too: translate it (StorageError)
            self._translate.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self._conn

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._conn is not None and self._translate is not None
        try:
            self._conn.close()
        except SQLAlchemyError as error:
            # Closing rolls the read back; on a connection the database just killed that fails too. The failure
            # must be translated like any other (a 503, not a 500), unless the read had already failed.
            if exc[1] is None:
                exc = (type(error), error, error.__traceback__)
        return self._translate.__exit__(*exc)


def _count_categories(categories: Sequence[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for cats in categories:
        for c in cats.split(","):
            result[c] = result.get(c, 0) + 1
    return result
