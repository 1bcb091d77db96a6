"""Writers of one region: the region write lock, the store's retry of a lost transaction, and the dialect-neutral
write operations (bulk insert, upsert-increment), on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, func, select

from onshore.errors import AlreadyProcessedError, WriteConflictError
from onshore.ledger.store import MerkleLog
from onshore.model import RecordColumns
from onshore.storage.migrate import upgrade
from onshore.storage.processed import BatchClaim
from onshore.storage.schema import frame_drops, processed_batches, record_keys, records, unclassified_signals
from onshore.storage.sql import CommitResult, SQLRecordStore, make_engine
from onshore.storage.writes import bulk_insert, region_lock_key, region_write_lock, upsert_increment
from tests.storage import test_record_store
from tests.storage.test_record_store import _events, _rows

store = test_record_store.store  # the same two-backend fixture (SQLite, PostgreSQL)


class FlakyJournal:
    """The region's ledger, but the first ``losses`` appends lose to a concurrent writer."""

    def __init__(self, log: MerkleLog, losses: int) -> None:
        self.log = log
        self.losses = losses
        self.calls = 0

    def append(self, conn: Connection, entries: list[bytes]) -> int:
        self.calls += 1
        if self.calls <= self.losses:
            raise WriteConflictError(f"ledger {self.log.region!r}: leaves were appended concurrently")
        return self.log.append(conn, entries)

    def tree_size(self, conn: Connection) -> int:
        return self.log.tree_size(conn)


def _tree_size(store: SQLRecordStore) -> int:
    with store.read("tree size") as conn:
        return MerkleLog(store.region).tree_size(conn)


def test_a_batch_that_lost_to_a_concurrent_writer_is_retried_and_counted_exactly(store: SQLRecordStore) -> None:
    store.commit_batch(_rows(["a", "b"]), _events(store.region))
    flaky = FlakyJournal(MerkleLog(store.region), losses=2)
    store.journal = flaky
    resend = _rows(["b", "c", "a"])
    before = dataclasses.replace(resend, records=RecordColumns(*(list(c) for c in resend.records.columns())))
    result = store.commit_batch(resend, _events(store.region))
    assert flaky.calls == 3  # two lost attempts (rolled back, rows included), the third committed
    assert (result.accepted, result.duplicate, result.by_category) == (1, 2, {"general": 1})
    assert resend == before  # the batch was not changed between attempts
    assert sorted(r["msg_id"] for r in store.query_records()) == ["a", "b", "c"]
    assert _tree_size(store) == 4  # each batch's two events once, not once per attempt


def test_a_write_that_loses_every_attempt_answers_busy_and_leaves_nothing(store: SQLRecordStore) -> None:
    flaky = FlakyJournal(MerkleLog(store.region), losses=1000)
    store.journal = flaky
    with pytest.raises(WriteConflictError) as caught:
        store.commit_batch(_rows(["a"]), _events(store.region))
    assert caught.value.status == 503  # never a 409: the client retries later, as after any 503
    assert 2 <= flaky.calls <= 10  # bounded
    assert store.count_records() == 0 and _tree_size(store) == 0


def test_bulk_insert_skips_stored_rows_and_counts_the_new_ones(store: SQLRecordStore) -> None:
    # a table with the same unique key on both backends (records' own key is record_keys on PostgreSQL)
    def rows(*signals: str) -> list[tuple[object, ...]]:
        return [(s, 1, 1, 1) for s in signals]

    with store.transaction("insert") as conn:
        conn.execute(unclassified_signals.delete())
        assert bulk_insert(conn, unclassified_signals, rows("a", "b")) == 2
    with store.transaction("insert") as conn:
        assert bulk_insert(conn, unclassified_signals, rows("b", "c", "d"), skip_existing_on=("signal",)) == 2
        assert bulk_insert(conn, unclassified_signals, []) == 0
    with store.read("count") as conn:
        assert conn.execute(select(func.count()).select_from(unclassified_signals)).scalar() == 4


def test_upsert_increment_creates_then_adds(store: SQLRecordStore) -> None:
    with store.transaction("frame drop") as conn:
        conn.execute(frame_drops.delete())
        for _ in range(3):
            upsert_increment(conn, frame_drops, {"day": "2024-06-15", "reason": "zone"}, {"frames": 2})
        upsert_increment(conn, frame_drops, {"day": "2024-06-15", "reason": "other"}, {"frames": 1})
    with store.read("frame drops") as conn:
        got = {reason: frames for reason, frames in conn.execute(select(frame_drops.c.reason, frame_drops.c.frames))}
    assert got == {"zone": 6, "other": 1}
    first = dataclasses.replace(_rows(["u1"]), unclassified_signals=["VendorExperimentalFoo"], received_ms=10)
    store.commit_batch(first, _events(store.region))
    store.commit_batch(dataclasses.replace(first, records=_rows(["u2"]).records, received_ms=20), _events(store.region))
    [seen] = store.unclassified()
    assert (seen["first_seen_ms"], seen["last_seen_ms"], seen["batches"]) == (10, 20, 2)


@pytest.fixture
def pg_store(pg_database: str, tmp_path: Path) -> Iterator[SQLRecordStore]:
    """A store of a fresh region on the real PostgreSQL server (its lock is an advisory lock; SQLite's is the
    database write lock its BEGIN IMMEDIATE takes)."""
    region = f"cn{secrets.token_hex(3)}"
    engine = make_engine(pg_database, base_dir=tmp_path)
    upgrade(engine, region=region)
    s = SQLRecordStore(engine, region=region, jurisdiction="CN", journal=MerkleLog(region))
    yield s
    with s.transaction("cleanup") as conn:
        conn.execute(records.delete())
        conn.execute(record_keys.delete())
    s.dispose()


def test_every_write_transaction_waits_for_the_region_write_lock(pg_store: SQLRecordStore) -> None:
    store = pg_store
    dsn = store.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    done = threading.Event()

    def write() -> None:
        store.commit_batch(_rows(["a"]), _events(store.region))
        done.set()

    with psycopg.connect(dsn) as other:  # another process writing the region
        other.execute("SELECT pg_advisory_xact_lock(%s)", (region_lock_key(store.region),))
        worker = threading.Thread(target=write)
        worker.start()
        time.sleep(1.0)
        assert not done.is_set() and store.count_records() == 0  # waiting, not writing beside it
        other.commit()
    worker.join(timeout=30)
    assert done.is_set() and store.count_records() == 1


def test_a_deadlock_across_two_regions_of_one_database_is_retried(pg_store: SQLRecordStore, tmp_path: Path) -> None:
    store = pg_store
    other = SQLRecordStore(
        make_engine(store.engine.url.render_as_string(hide_password=False), base_dir=tmp_path),
        region=f"{store.region}x",
        jurisdiction="CN",
        journal=MerkleLog(f"{store.region}x"),
    )
    both_hold_their_own = threading.Barrier(2, timeout=10)
    attempts = {store.region: 0, other.region: 0}
    results: dict[str, str] = {}

    def crossing(mine: SQLRecordStore, theirs: SQLRecordStore) -> None:
        def work(conn: Connection) -> str:
            attempts[mine.region] += 1
            if attempts[mine.region] == 1:
                both_hold_their_own.wait()  # each transaction holds its own region's lock...
            region_write_lock(conn, theirs.region)  # ...and asks for the other's: PostgreSQL aborts one
            return "committed"

        results[mine.region] = mine.write("cross-region write", work)

    try:
        threads = [threading.Thread(target=crossing, args=pair) for pair in ((store, other), (other, store))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results == {store.region: "committed", other.region: "committed"}
        assert sorted(attempts.values()) == [1, 2]  # the deadlock's victim ran again, once
    finally:
        other.dispose()


def test_an_ingest_writes_its_rows_before_it_queues_for_the_region_write_lock(pg_store: SQLRecordStore) -> None:
    """Writers of a region insert rows side by side and queue only to append to the ledger: while another holds
    the lock, the batch's backend has already written (its transaction has an id, its rows are in) and waits for
    the advisory lock; once it gets it the batch commits whole, with a store event its rows name."""
    store = pg_store
    dsn = store.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    done = threading.Event()

    def write() -> None:
        store.commit_batch(_rows(["a", "b", "c"]), _events(store.region))
        done.set()

    def waiting() -> list[tuple[object, ...]]:
        return other.execute(
            "SELECT backend_xid IS NOT NULL, wait_event FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchall()

    with psycopg.connect(dsn) as other, psycopg.connect(dsn, autocommit=True) as watch:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (region_lock_key(store.region),))
        worker = threading.Thread(target=write)
        worker.start()
        deadline = time.monotonic() + 10
        while not watch.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
        ).fetchall():
            assert time.monotonic() < deadline, "the batch never queued for the region lock"
            time.sleep(0.05)
        assert waiting() == [(True, "advisory")]  # it has written (rows, keys, batch reference) and waits
        assert not done.is_set() and store.count_records() == 0  # nothing is visible before it commits
        other.commit()
    worker.join(timeout=30)
    assert done.is_set()
    [row_a] = [r for r in store.query_records() if r["msg_id"] == "a"]
    with store.read("store event") as conn:
        [store_event] = [i for i, e in enumerate(MerkleLog(store.region).entries(conn, 0, 2)) if b'"store"' in e]
    assert row_a["store_idx"] == store_event and store.count_records() == 3


def test_the_same_claimed_batch_staged_twice_side_by_side_commits_once(pg_store: SQLRecordStore) -> None:
    """Two workers given one batch with no rows to wait on (every record refused for consent, say) both stage it
    while a third holds the lock; the first to get the lock commits it, the second is answered from that commit."""
    store = pg_store
    dsn = store.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    outcomes: list[object] = []
    once = BatchClaim[CommitResult]("batch-1", 1, lambda r: f'{{"accepted": {r.accepted}}}')

    def write() -> None:
        try:
            outcomes.append(store.commit_batch(_rows([]), _events(store.region), once=once))
        except AlreadyProcessedError as exc:
            outcomes.append(exc)

    with psycopg.connect(dsn) as other, psycopg.connect(dsn, autocommit=True) as watch:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (region_lock_key(store.region),))
        workers = [threading.Thread(target=write) for _ in range(2)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 10
        while len(watch.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'").fetchall()) < 2:
            assert time.monotonic() < deadline, "both never queued for the region lock"
            time.sleep(0.05)
        other.commit()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyProcessedError", "CommitResult"]
    assert _tree_size(store) == 2  # the batch's two events once
    with store.read("processed") as conn:
        assert conn.execute(select(func.count()).select_from(processed_batches)).scalar() == 1
