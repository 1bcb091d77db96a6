"""Crash test of distributed mode: 100,000 records through a gateway and workers over the real NATS JetStream into
a PostgreSQL region, while workers are killed with SIGKILL at random points, several times, and the gateway once.

Clients send each batch until a gateway acknowledges it (202); then every acknowledged record must be stored
exactly once, every batch logged exactly once (one collect event per processed batch, the stored counts adding
up to the rows), and `onshore ledger verify` must pass.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, func, select, tuple_

from onshore.ingest.nats_bus import NatsBus
from onshore.model import Vehicle
from onshore.storage.schema import processed_batches, records
from onshore.web.server import free_port
from tests.bus.conftest import Distributed, distributed_workspace, wait_for
from tests.conftest import auth, fresh_pg_database, now_ms
from tests.servers import start_server
from tests.vision.test_frame_ingest import ledger_events_of

pytestmark = pytest.mark.services

VEHICLES = 8
BATCHES = 100
RECORDS = 1000  # 100 x 1000 = 100,000 records
WORKER_KILLS = 4
SIGNALS = ("VehicleSpeed", "Odometer", "BatteryLevel", "OutsideTemp")


@pytest.fixture
def region(tmp_path: Path, nats_url: str, bus_prefix: str) -> Iterator[tuple[Distributed, str]]:
    with fresh_pg_database() as url:
        yield distributed_workspace(tmp_path, nats_url, bus_prefix, record_store=url), url


def _body(batch: int) -> bytes:
    ts = now_ms() - 60_000
    return orjson.dumps(
        [
            {"msg_id": f"b{batch}-r{r}", "ts": ts + r, "signal": SIGNALS[r % 4], "value": (batch * r) % 97}
            for r in range(RECORDS)
        ]
    )


def test_killed_workers_and_a_killed_gateway_store_every_acknowledged_record_once(
    region: tuple[Distributed, str], tmp_path: Path
) -> None:
    ws, url = region
    setup = ws.runtime()
    try:
        issued = [setup.vehicles.add(f"LSVM0TEST{n:08d}", "CN") for n in range(100, 100 + VEHICLES)]
    finally:
        setup.close()
    port = free_port()
    gateway = start_server(ws.config, port, tmp_path / "gateway.log")
    ws.processes.append(gateway)
    acknowledged: dict[str, tuple[Vehicle, int]] = {}  # receipt -> (vehicle, batch)
    lock = threading.Lock()
    chaos = {"worker_kills": 0, "gateway_kills": 0, "refused_while_down": 0}
    sending = threading.Event()
    sending.set()
    rng = random.Random(11)

    def send(batch: int) -> None:
        issuer = issued[batch % VEHICLES]
        body = _body(batch)
        headers = {**auth(issuer.token), "Content-Type": "application/json"}
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while True:  # at least once: the same records again until a gateway acknowledges them
                try:
                    answer = http.post("/v1/ingest", content=body, headers=headers)
                    if answer.status_code == 202:
                        with lock:
                            acknowledged[answer.json()["receipt"]] = (issuer.vehicle, batch)
                        return
                    assert answer.status_code in (429, 503), answer.text
                except httpx.TransportError:
                    with lock:
                        chaos["refused_while_down"] += 1
                assert time.monotonic() < deadline, f"batch {batch} never acknowledged"
                time.sleep(0.1)

    def kill_the_gateway_once() -> None:
        nonlocal gateway
        wait_for(lambda: len(acknowledged) >= BATCHES // 3, 60, "a third of the batches acknowledged")
        gateway.kill()
        gateway.wait()
        chaos["gateway_kills"] += 1
        time.sleep(0.5)
        gateway = start_server(ws.config, port, tmp_path / "gateway.log")
        ws.processes.append(gateway)

    def kill_workers() -> None:
        bus = NatsBus(ws.settings().bus, name="test-killer")
        try:
            for n in range(WORKER_KILLS):
                worker = ws.worker(tmp_path / f"worker-{n}.log")
                # mid-batch: once it holds fetched batches (some committed, not all acknowledged), at a random moment
                deadline = time.monotonic() + 30
                while bus.depth("cn")["in_flight"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0, 1.5))
                worker.kill()
                worker.wait()
                chaos["worker_kills"] += 1
        finally:
            bus.close()

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            killers = [pool.submit(kill_the_gateway_once), pool.submit(kill_workers)]
            list(ThreadPoolExecutor(4).map(send, range(BATCHES)))
            for killer in killers:
                killer.result()
        sent_s = time.monotonic() - started
        assert len(acknowledged) == BATCHES and chaos == {**chaos, "worker_kills": WORKER_KILLS, "gateway_kills": 1}

        last = ws.worker(tmp_path / "worker-last.log", "--json")  # the survivor drains the stream
        bus = NatsBus(ws.settings().bus, name="test")
        try:

            def all_answered() -> bool:
                return all(
                    bus.receipt("cn", receipt, vehicle.ref)["status"] == "done"
                    for receipt, (vehicle, _) in list(acknowledged.items())
                )

            wait_for(all_answered, 90, "every acknowledged batch answered")
            depth = bus.depth("cn")
        finally:
            bus.close()
        elapsed = time.monotonic() - started
        print(f"sent and acknowledged after {sent_s:.1f} s, all answered after {elapsed:.1f} s")
    finally:
        ws.stop_all()
    survivor = orjson.loads((tmp_path / "worker-last.log").read_text().strip().splitlines()[-1])
    assert last.returncode == 0 and survivor["redelivered"] >= 1, survivor  # the last kill interrupted work

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(records)).scalar()
            distinct = conn.execute(
                select(func.count(func.distinct(tuple_(records.c.vehicle_ref, records.c.msg_id))))
            ).scalar()
            keys = {(r[0], r[1]) for r in conn.execute(select(records.c.vehicle_ref, records.c.msg_id))}
            processed = {row[0] for row in conn.execute(select(processed_batches.c.batch_id))}
    finally:
        engine.dispose()
    expected = {(v.ref, f"b{batch}-r{r}") for v, batch in acknowledged.values() for r in range(RECORDS)}
    assert distinct == stored, "a record was stored twice"
    assert keys == expected and stored == BATCHES * RECORDS
    assert set(acknowledged) <= processed, "an acknowledged batch has no commit"

    runtime = ws.runtime()
    try:
        events = ledger_events_of(runtime.regions["cn"], 0)
    finally:
        runtime.close()
    collects = [e for e in events if e["kind"] == "collect"]
    assert len(collects) == len(processed), "a batch was logged twice (or not at all)"
    assert sum(e["counts"]["stored"] for e in events if e["kind"] == "store") == stored
    assert depth["messages"] == 0 and depth["in_flight"] == 0, depth
    verify = subprocess.run(
        [sys.executable, "-m", "onshore", "ledger", "verify", "-c", str(ws.config), "--region", "cn"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    print(f"crash test: {stored} records, {len(processed)} batches, {chaos}, survivor {survivor}, {elapsed:.1f} s")
