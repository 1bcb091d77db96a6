"""PostgreSQL's ``records`` partitioned by month: partitions made on demand, de-duplication whatever the time and
the process, retention dropping a month whose every row has expired (and only such a month), the ledger still
verifying after it. The real PostgreSQL server; SQLite is not partitioned (its side of each behaviour is covered
by the suites that run over both backends).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from onshore.cli import app
from onshore.ledger.store import MerkleLog
from onshore.model import LifecycleEvent, RecordColumns, StoredRows, Vehicle
from onshore.storage.migrate import upgrade
from onshore.storage.partitions import Month, drop_expired_partitions, months_touched, present_months
from onshore.storage.predicates import RecordFilter
from onshore.storage.sql import SQLRecordStore, make_engine
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, fresh_pg_database, now_ms

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400_000
JAN_2024 = Month(2024, 1).start_ms


def stored_rows(keys: list[tuple[str, int]], vehicle: str = "vref1") -> StoredRows:
    """A batch of general rows of ``vehicle``, one per ``(msg_id, ts_ms)`` (synthetic, no personal data)."""
    rows = [
        (vehicle, m, ts, "VehicleSpeed", "1", "general", "", "vehicle_services", "cn.sig.speed", "CN", None, ts, "s1")
        for m, ts in keys
    ]
    return StoredRows(
        origin="CN",
        vehicle=Vehicle(vehicle, "CN", "cn"),
        received_ms=1,
        records=RecordColumns.from_rows(rows),
        dropped_no_consent=0,
        dropped_by_purpose={},
        by_category={"general": len(rows)},
        zone_hits=0,
        duplicates_in_batch=0,
        unclassified_signals=[],
    )


def store_events(region: str) -> list[LifecycleEvent]:
    return [LifecycleEvent("collect", region, 1, "vehicle"), LifecycleEvent("store", region, 1, "vehicle")]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


def open_store(url: str, region: str = "cn", *, migrate: bool = True) -> SQLRecordStore:
    engine = make_engine(url, base_dir=ROOT)
    if migrate:
        upgrade(engine, region=region)
    return SQLRecordStore(engine, region=region, jurisdiction="CN", journal=MerkleLog(region))


def where_rows_live(engine: Engine) -> dict[str, str]:
    """msg_id → the partition table holding the row."""
    with engine.connect() as conn:
        return {m: p for m, p in conn.execute(text("SELECT msg_id, tableoid::regclass::text FROM records"))}


def test_months_of_a_batch() -> None:
    assert Month.of(JAN_2024) == Month(2024, 1) and Month.of(JAN_2024 - 1) == Month(2023, 12)
    assert Month(2023, 12).end_ms == JAN_2024 and Month(2024, 1).name == "records_p2024_01"
    assert months_touched([JAN_2024 + 5, JAN_2024 + 9]) == {Month(2024, 1)}
    assert months_touched([JAN_2024 - 1, JAN_2024, Month(2024, 3).start_ms]) == {
        Month(2023, 12),
        Month(2024, 1),
        Month(2024, 3),
    }


def test_a_batch_makes_the_partitions_of_the_months_it_touches(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        with store.read("partitions") as conn:
            assert present_months(conn) == set()  # a new store: partitions come with the rows
        keys = [
            ("dec", JAN_2024 - 1),
            ("jan", JAN_2024),
            ("jan2", JAN_2024 + 40 * 60_000),
            ("mar", Month(2024, 3).start_ms),
        ]
        result = store.commit_batch(stored_rows(keys), store_events("cn"))
        assert (result.accepted, result.duplicate) == (4, 0)
        with store.read("partitions") as conn:
            assert present_months(conn) == {Month(2023, 12), Month(2024, 1), Month(2024, 3)}  # no February
        assert where_rows_live(store.engine) == {
            "dec": "records_p2023_12",
            "jan": "records_p2024_01",
            "jan2": "records_p2024_01",
            "mar": "records_p2024_03",
        }
        # the same months again: nothing new, and a read across partitions sees every row in id order
        store.commit_batch(stored_rows([("jan3", JAN_2024 + 1)]), store_events("cn"))
        assert [r["msg_id"] for r in store.query_records()] == ["dec", "jan", "jan2", "mar", "jan3"]
        window = store.query_records(since_ms=JAN_2024, until_ms=Month(2024, 2).start_ms)
        assert [r["msg_id"] for r in window] == ["jan", "jan2", "jan3"]
    finally:
        store.dispose()


def test_a_resend_is_a_duplicate_whatever_its_time(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.commit_batch(stored_rows([("a", JAN_2024), ("b", JAN_2024)]), store_events("cn"))
        # the same message ids with times in other months: the partition key differs, the record does not
        again = store.commit_batch(
            stored_rows([("a", JAN_2024 - 5 * DAY), ("b", JAN_2024 + 40 * DAY), ("c", JAN_2024)]), store_events("cn")
        )
        assert (again.accepted, again.duplicate) == (1, 2)
        assert sorted((r["msg_id"], r["ts_ms"]) for r in store.query_records()) == [
            ("a", JAN_2024),
            ("b", JAN_2024),
            ("c", JAN_2024),
        ]
        with store.read("keys") as conn:
            assert conn.execute(text("SELECT count(*) FROM record_keys")).scalar() == 3
    finally:
        store.dispose()


_PROCESS = """
import json, sys, time
from tests.storage.test_partitions import open_store, store_events, stored_rows
url, region, start_at, keys = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
store = open_store(url, region, migrate=False)
time.sleep(max(0.0, start_at - time.time()))
result = store.commit_batch(stored_rows([tuple(k) for k in keys]), store_events(region))
print(json.dumps([result.accepted, result.duplicate]))
store.dispose()
"""


def _processes(url: str, runs: list[tuple[str, list[tuple[str, int]]]]) -> list[tuple[int, int]]:
    """Run each ``(region, keys)`` batch in its own process, all starting at the same moment."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    start_at = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_PROCESS), url, region, start_at, json.dumps(keys)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for region, keys in runs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        accepted, duplicate = json.loads(out.strip().splitlines()[-1])
        results.append((accepted, duplicate))
    return results


def test_processes_at_once_make_a_month_once_and_store_a_message_once(pg_url: str) -> None:
    """Two regions in one database (two write locks) and a second process of the first, all sending the same
    messages into a month no partition exists for yet: one partition, each message stored once, the rest
    duplicates; then a new process resends them with times in another month: duplicates too."""
    for region in ("cna", "cnb"):
        open_store(pg_url, region).dispose()
    keys = [(f"m{i}", Month(2024, 5).start_ms + i) for i in range(50)]
    results = _processes(pg_url, [("cna", keys), ("cnb", keys), ("cna", keys)])
    assert sum(a for a, _ in results) == 50 and sum(d for _, d in results) == 100
    assert sorted(results) == [(0, 50), (0, 50), (50, 0)]
    resent = [(m, Month(2024, 7).start_ms) for m, _ in keys]
    assert _processes(pg_url, [("cnb", resent)]) == [(0, 50)]
    store = open_store(pg_url, "cna", migrate=False)
    try:
        assert set(where_rows_live(store.engine).values()) == {"records_p2024_05"}
        assert store.count_records() == 50
    finally:
        store.dispose()


# -- retention ------------------------------------------------------------------------------------------------

runner = CliRunner()


def _verify(ws: Workspace) -> int:
    return runner.invoke(app, ["ledger", "verify", "-c", str(ws.config), "--region", "cn"]).exit_code


def _partitions(ws: Workspace) -> set[str]:
    with ws.runtime.regions["cn"].store.read("partitions") as conn:
        return set(
            conn.execute(
                text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'records'::regclass")
            ).scalars()
        )


@pytest.mark.parametrize("record_backend", ["postgresql"], indirect=True)
def test_retention_drops_a_month_whose_every_row_expired_and_the_ledger_still_verifies(workspace: Workspace) -> None:
    rt = workspace.runtime
    one = rt.vehicles.add(CN_VIN, "CN").vehicle
    two = rt.vehicles.add(CN_VIN_2, "CN").vehicle
    for vin in (CN_VIN, CN_VIN_2):
        rt.consents.grant(rt.vehicles.owner_of(vin, "CN"), "infotainment", "ordinary", None, actor_role="officer")
    now = now_ms()
    gone = Month.of(now - 400 * DAY)  # personal rows only: all past the 365-day personal-data policy
    kept = Month(gone.year - 1, gone.month)  # the same, plus one general row (no rule expires it)
    current = Month.of(now)

    def media(prefix: str, month: Month, n: int) -> list[dict[str, object]]:
        return [
            {"msg_id": f"{prefix}{i}", "ts": month.start_ms + DAY + i, "signal": "MediaNowPlayingTitle", "value": "x"}
            for i in range(n)
        ]

    assert (
        rt.ingest.ingest_records(one, media("g", gone, 3) + media("k", kept, 2)).accepted == 5
    )  # one batch, two months
    assert rt.ingest.ingest_records(two, media("h", gone, 2)).accepted == 2
    general = {"msg_id": "speed", "ts": kept.start_ms + 2 * DAY, "signal": "VehicleSpeed", "value": 1}
    assert rt.ingest.ingest_records(two, [general, *media("n", current, 2)]).accepted == 3
    assert _partitions(workspace) == {gone.name, kept.name, current.name}
    assert _verify(workspace) == 0

    results = [r for r in rt.retention.run(now_ms=now) if r.region == "cn"]
    dropped = [r for r in results if r.rule_id == "records.partition"]
    assert [(r.partition, r.deleted) for r in dropped] == [(gone.name, 5)]
    by_rule = {r.rule_id: r.deleted for r in results}
    assert by_rule["cn.retention.personal-policy"] == 2  # the personal rows of the kept month, row by row
    # gone is gone, kept stays for its general row; the current and the next month are prepared
    assert _partitions(workspace) == {kept.name, current.name, current.next().name}
    left = sorted(r["msg_id"] for r in rt.regions["cn"].store.query_records())
    assert left == ["n0", "n1", "speed"]

    # one delete event for the month, committing to a tombstone per row
    store = rt.regions["cn"].store
    with store.read("ledger") as conn:
        event = orjson.loads(MerkleLog("cn").entries(conn, dropped[0].ledger_index, dropped[0].ledger_index + 1)[0])
        tombstones = conn.execute(
            text("SELECT count(*) FROM record_tombstones WHERE delete_idx = :i"), {"i": dropped[0].ledger_index}
        ).scalar()
        keys = set(conn.execute(text("SELECT msg_id FROM record_keys")).scalars())
    assert (event["kind"], event["purpose"], event["counts"]) == (
        "delete",
        "retention",
        {"records": 5, "partitions": 1},
    )
    assert tombstones == 5
    assert keys == {"n0", "n1", "speed"}  # the dropped rows' keys went with them: they may be sent again
    assert _verify(workspace) == 0
    assert [r for r in rt.retention.run(now_ms=now) if r.rule_id == "records.partition"] == []  # nothing more

    assert rt.ingest.ingest_records(one, media("g", gone, 1)).accepted == 1  # a month made again on demand
    assert gone.name in _partitions(workspace)
    assert rt.ingest.ingest_records(two, [general]).duplicate == 1  # a stored key is still a duplicate
    assert _verify(workspace) == 0
    # a row removed without a delete event still fails the check
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM records WHERE msg_id = 'speed'"))
    assert _verify(workspace) == 1


@contextlib.contextmanager
def reading_records(url: str) -> Iterator[None]:
    """Another session in the middle of a read of records (it holds records' share lock until it ends)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as reader:
        reader.execute("SELECT count(*) FROM records").fetchone()
        yield
        reader.rollback()


def test_a_month_is_made_while_another_session_reads_records(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.commit_batch(stored_rows([("a", JAN_2024)]), store_events("cn"))
        with reading_records(pg_url):
            batch = threading.Thread(
                target=store.commit_batch, args=(stored_rows([("b", Month(2024, 4).start_ms)]), store_events("cn"))
            )
            batch.start()
            batch.join(timeout=5)
            stored_meanwhile = not batch.is_alive()  # ATTACH waits for no reader (CREATE ... PARTITION OF would)
        batch.join()
        assert stored_meanwhile and store.count_records() == 2
    finally:
        store.dispose()


def test_a_drop_that_would_wait_for_a_reader_is_left_for_the_next_run(pg_url: str) -> None:
    store = open_store(pg_url)
    now = Month(2024, 6).start_ms
    old = [(f"o{i}", JAN_2024 + i) for i in range(3)]
    expire_all = [RecordFilter(until_ms=now - 30 * DAY)]

    def event(deleted: int, digest: str | None) -> LifecycleEvent:
        return LifecycleEvent("delete", "cn", now, "system", "retention", {"records": deleted}, digest, version=2)

    try:
        store.commit_batch(stored_rows(old), store_events("cn"))
        with reading_records(pg_url):
            started = time.monotonic()
            assert drop_expired_partitions(store, expire_all, event, now_ms=now) == []
            assert 1.5 < time.monotonic() - started < 10  # it waited about two seconds, then gave up
            with store.read("partitions") as conn:
                assert Month(2024, 1) in present_months(conn)  # still there, with its rows and keys
            assert store.count_records() == 3
        [dropped] = drop_expired_partitions(store, expire_all, event, now_ms=now)
        assert (dropped.name, dropped.records) == ("records_p2024_01", 3) and dropped.ledger_index is not None
        with store.read("partitions") as conn:
            assert present_months(conn) == {Month(2024, 6), Month(2024, 7)}  # this month and the next, made ahead
            assert conn.execute(text("SELECT count(*) FROM record_keys")).scalar() == 0
    finally:
        store.dispose()
