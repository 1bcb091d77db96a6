"""Distributed mode over the real NATS JetStream: a gateway and a worker answer and store what embedded mode does;
a redelivered batch is stored and logged once; a bad batch is refused on its receipt and blocks nothing; a database
outage delays a batch without losing it; receipts belong to the vehicle that sent the batch."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from onshore.config import Settings, load_settings
from onshore.errors import BatchFormatError
from onshore.ingest.batch import BatchRef, RecordBatch
from onshore.ingest.jetstream import JetStreamLink, RegionNames
from onshore.runtime import Runtime
from onshore.storage.schema import processed_batches, records
from onshore.vision.codec import encode_frame
from onshore.vision.ingest import FrameMeta
from onshore.web.app import create_app
from onshore.web.server import free_port
from onshore.worker import Worker, WorkerStats
from onshore.workspace import init_workspace
from tests.border.helpers import ZONE_POINT
from tests.bus.conftest import Distributed, bus_toml, distributed_workspace
from tests.conftest import CN_VIN, CN_VIN_2, auth, fresh_pg_database, now_ms
from tests.servers import start_server
from tests.vision.test_anonymized_frames import build_street_frame
from tests.vision.test_frame_ingest import ledger_events_of, noise_jpeg

pytestmark = pytest.mark.services


def _batch(ts: int, prefix: str = "s") -> list[dict[str, Any]]:
    """Records over every branch: general, coarsened and encrypted, zone, no consent, unknown, a duplicate."""
    return [
        {"msg_id": f"{prefix}1", "ts": ts, "signal": "VehicleSpeed", "value": 42.5},
        {"msg_id": f"{prefix}2", "ts": ts + 1, "signal": "Odometer", "value": 2**62},
        {
            "msg_id": f"{prefix}3",
            "ts": ts + 2,
            "signal": "Location",
            "value": {"latitude": 26.647, "longitude": 106.63},
        },
        {"msg_id": f"{prefix}4", "ts": ts + 3, "signal": "Location", "value": ZONE_POINT, "purpose": "navigation"},
        {"msg_id": f"{prefix}5", "ts": ts + 4, "signal": "MediaNowPlayingArtist", "value": "Invented Band"},
        {"msg_id": f"{prefix}6", "ts": ts + 5, "signal": "VendorExperimentalFoo", "value": {"a": [1, None, "ü"]}},
        {"msg_id": f"{prefix}1", "ts": ts, "signal": "VehicleSpeed", "value": 42.5},
    ]


def _opened_rows(runtime: Runtime) -> list[dict[str, Any]]:
    region = runtime.regions["cn"]
    with region.store.read("test") as conn:
        raw = [dict(r._mapping) for r in conn.execute(records.select().order_by(records.c.msg_id))]
    return [{k: v for k, v in r.items() if k not in ("id", "received_ms")} for r in region.open_rows(raw)]


def _events(runtime: Runtime) -> list[dict[str, Any]]:
    """The region's ledger events without their times and content digests (ciphertexts differ by their nonces)."""
    return [
        {k: v for k, v in e.items() if k not in ("at_ms", "digest")} for e in ledger_events_of(runtime.regions["cn"], 0)
    ]


def _verify(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "onshore", "ledger", "verify", "-c", str(config), "--region", "cn"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _outcome(http: httpx.Client, token: str, response: httpx.Response, timeout_s: float = 60) -> dict[str, Any]:
    """The receipt's final state for a 202 answer (polled through the gateway)."""
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location == response.json()["location"] and response.json()["status"] == "pending"
    deadline = time.monotonic() + timeout_s
    while True:
        receipt = http.get(location, headers=auth(token)).json()
        if receipt["status"] != "pending":
            return receipt  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"receipt {location} still pending"
        time.sleep(0.05)


def _embedded_answer(response: Any) -> dict[str, Any]:
    """What embedded mode answered, in the receipt's terms."""
    if response.status_code == 200:
        return {"status": "done", "result": response.json()}
    return {"status": "failed", "http_status": response.status_code, "error": response.json()["error"]}


# -- the same answers and rows as embedded mode -----------------------------------------------------------------


@pytest.fixture
def twins(tmp_path: Path, nats_url: str, bus_prefix: str) -> Iterator[tuple[Path, Path, str]]:
    """Two copies of one workspace (same keys, vehicle, consents): ``embedded`` and ``distributed``."""
    embedded = tmp_path / "embedded"
    config, _ = init_workspace(embedded)
    setup = Runtime(load_settings(config, env={}), create=True)
    try:
        token = setup.vehicles.add(CN_VIN, "CN").token
        owner = setup.vehicles.owner_of(CN_VIN, "CN")
        setup.consents.grant(owner, "navigation", "separate", "7d", actor_role="officer")
    finally:
        setup.close()
    shutil.copytree(embedded, tmp_path / "distributed")
    distributed = tmp_path / "distributed" / config.name
    distributed.write_text(distributed.read_text() + bus_toml(nats_url, bus_prefix), encoding="utf-8")
    yield config, distributed, token


def test_a_gateway_and_a_worker_answer_and_store_what_embedded_mode_does(
    twins: tuple[Path, Path, str], tmp_path: Path
) -> None:
    embedded_config, distributed_config, token = twins
    ts = now_ms() - 5000
    street = encode_frame(build_street_frame()[0], "image/png")  # faces and plates; over NATS's 1 MiB max_payload
    zone = f"{ZONE_POINT['latitude']},{ZONE_POINT['longitude']}"
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/v1/ingest", {"json": _batch(ts)}),
        ("/v1/ingest", {"json": _batch(ts)[:3] + _batch(ts + 10, "t")}),  # resends and new records
        ("/v1/ingest", {"json": [{"msg_id": "bad", "ts": ts, "signal": "VehicleSpeed", "value": "fast"}]}),
        ("/v1/frames?msg_id=f-1&camera=front&ts=" + str(ts), {"content": noise_jpeg(), "media": "image/jpeg"}),
        ("/v1/frames?msg_id=f-2&camera=front&ts=" + str(ts + 1), {"content": street, "media": "image/png"}),
        ("/v1/frames?msg_id=f-3&camera=front&ts=" + str(ts + 2), {"content": noise_jpeg(2), "zone": zone}),
        ("/v1/frames?msg_id=f-1&camera=front&ts=" + str(ts), {"content": noise_jpeg(), "media": "image/jpeg"}),
    ]

    def send(http: Any, path: str, spec: dict[str, Any]) -> Any:
        headers = auth(token)
        if "json" in spec:
            return http.post(path, json=spec["json"], headers=headers)
        headers["Content-Type"] = spec.get("media", "image/jpeg")
        if "zone" in spec:
            headers["X-Onshore-Position"] = spec["zone"]
        return http.post(path, content=spec["content"], headers=headers)

    embedded = Runtime(load_settings(embedded_config, env={}))
    try:
        with TestClient(create_app(embedded)) as client:
            expected = [_embedded_answer(send(client, path, spec)) for path, spec in requests]
    finally:
        embedded.close()
    assert [e["status"] for e in expected] == ["done", "done", "failed", "done", "done", "done", "done"]

    port = free_port()
    gateway = start_server(distributed_config, port, tmp_path / "gateway.log")
    ws = Distributed(distributed_config.parent, distributed_config, {}, [gateway])
    ws.worker(tmp_path / "worker.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            got = []
            for path, spec in requests:
                receipt = _outcome(http, token, send(http, path, spec))
                got.append({k: v for k, v in receipt.items() if k not in ("receipt", "region")})
            health = http.get("/v1/health")
    finally:
        ws.stop_all()
    assert got == expected  # every answer, counts, categories, ledger indexes and the 422 included
    assert health.status_code == 200 and health.json()["dependencies"] == {
        "database": {"cn": "ok", "eu": "ok"},
        "bus": "ok",
    }

    twins_rt = [Runtime(load_settings(c, env={})) for c in (embedded_config, distributed_config)]
    try:
        rows = [_opened_rows(rt) for rt in twins_rt]
        assert rows[0] == rows[1] and len(rows[0]) == 10
        assert _events(twins_rt[0]) == _events(twins_rt[1])
        blobs = [sorted(p.read_bytes() for p in rt.regions["cn"].blobs.root.rglob("*.*g")) for rt in twins_rt]
        assert blobs[0] == blobs[1] and len(blobs[0]) == 2
    finally:
        for rt in twins_rt:
            rt.close()
    _verify(distributed_config)


# -- redelivery, refusals and outages, with an in-process worker -------------------------------------------------


class Harness:
    """A distributed workspace's runtime (the gateway side) and a worker in this process, on one event loop."""

    def __init__(self, ws: Distributed) -> None:
        self.ws = ws
        self.settings: Settings = ws.settings()
        self.runtime = Runtime(self.settings)
        issued = self.runtime.vehicles.add(CN_VIN, "CN")
        self.token, self.vehicle = issued.token, issued.vehicle

    def admit(self, body: list[dict[str, Any]]) -> RecordBatch:
        return self.runtime.ingest.admit_body(self.vehicle, orjson.dumps(body), "application/json")

    def receipt(self, batch_id: str) -> dict[str, Any]:
        assert self.runtime.queue is not None
        return self.runtime.queue.receipt("cn", batch_id, self.vehicle.ref)

    async def work(self, link: JetStreamLink, *, idle_exit_s: float, stop: asyncio.Event | None = None) -> WorkerStats:
        worker = Worker(self.settings, "cn", self.runtime.processor, link)
        try:
            return await worker.run(stop or asyncio.Event(), idle_exit_s=idle_exit_s)
        finally:
            worker.close()

    def count(self, table: Any = records) -> int:
        with self.runtime.regions["cn"].store.read("test") as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in ledger_events_of(self.runtime.regions["cn"], 0)]


@pytest.fixture
def harness(tmp_path: Path, nats_url: str, bus_prefix: str) -> Iterator[Harness]:
    h = Harness(distributed_workspace(tmp_path, nats_url, bus_prefix))
    try:
        yield h
    finally:
        h.runtime.close()


def test_a_batch_committed_but_not_acknowledged_is_answered_from_its_commit(harness: Harness) -> None:
    batch = harness.admit(_batch(now_ms() - 5000))
    assert harness.runtime.queue is not None
    receipt = harness.runtime.queue.enqueue(batch)

    async def scenario() -> tuple[dict[str, Any], bool, WorkerStats]:
        link = JetStreamLink(harness.settings.bus, name="test")
        try:
            # a worker that committed the batch and died before acknowledging it
            subscription = await link.consumer("cn")
            [message] = await subscription.fetch(1, timeout=5)
            first = harness.runtime.processor.process_once(msgspec.msgpack.decode(message.data, type=RecordBatch))
            again = await link.publish(batch)  # a gateway's retried publish, inside the duplicate window
            stats = await harness.work(link, idle_exit_s=3.5)  # gets it again after ack_wait (2 s)
            return first, again, stats
        finally:
            await link.close()

    first, duplicate_publish, stats = asyncio.run(scenario())
    assert duplicate_publish, "JetStream stored a retried publish twice"
    assert (stats.processed, stats.redelivered, stats.refused) == (1, 1, 0)
    assert harness.receipt(receipt.batch_id) == {
        "receipt": receipt.batch_id,
        "status": "done",
        "region": "cn",
        "result": first,
    }
    assert first["accepted"] == 2 and harness.count() == 2  # no consents here: the personal records are dropped
    assert harness.kinds() == ["collect", "store"], "the redelivery was logged again"
    assert harness.count(processed_batches) == 1
    _verify(harness.ws.config)


def test_a_bad_batch_is_refused_on_its_receipt_and_blocks_nothing(harness: Harness, bus_prefix: str) -> None:
    ts = now_ms() - 5000
    good = [harness.admit(_batch(ts, "a")), harness.admit(_batch(ts, "b"))]
    wrong_shape = harness.admit([{"msg_id": "w", "ts": ts, "signal": "VehicleSpeed", "value": "fast"}])
    old_release = msgspec.structs.replace(harness.admit(_batch(ts, "c")), version=1)
    names = RegionNames.of(bus_prefix, "cn")

    async def scenario() -> tuple[WorkerStats, dict[str, int]]:
        link = JetStreamLink(harness.settings.bus, name="test")
        nc = await nats.connect(harness.settings.bus.url)
        try:
            await link.consumer("cn")
            await link.publish(good[0])
            await link.publish(wrong_shape)
            await link.publish(old_release)
            js = nc.jetstream()
            await js.publish(names.subject, b"\x93not a batch", headers={"Nats-Msg-Id": "x" * 32})
            await js.publish(names.subject, b"\x81\xa4kind\xa3ref", headers={"Nats-Msg-Id": "y" * 32})
            await link.publish(good[1])
            stats = await harness.work(link, idle_exit_s=3)
            return stats, await link.depth("cn")
        finally:
            await nc.close()
            await link.close()

    stats, depth = asyncio.run(scenario())
    assert (stats.processed, stats.refused, stats.redelivered, stats.retried) == (2, 4, 0, 0)
    assert depth == {"messages": 0, "pending": 0, "in_flight": 0, "redelivered": 0}
    assert [harness.receipt(b.batch_id)["status"] for b in good] == ["done", "done"]
    refused = harness.receipt(wrong_shape.batch_id)
    assert refused["status"] == "failed" and refused["http_status"] == 422
    assert refused["error"]["code"] == "validation_failed" and "expected a number" in refused["error"]["message"]
    old = harness.receipt(old_release.batch_id)
    assert old["http_status"] == 500 and old["error"]["code"] == "batch_invalid"
    assert "has version 1; this onshore reads batch version 2" in old["error"]["message"]
    assert harness.count() == 4 and harness.kinds() == ["collect", "store"] * 2


def test_a_database_outage_delays_a_batch_and_loses_nothing(tmp_path: Path, nats_url: str, bus_prefix: str) -> None:
    import psycopg

    with fresh_pg_database() as url:
        harness = Harness(distributed_workspace(tmp_path, nats_url, bus_prefix, record_store=url))
        name = url.rsplit("/", 1)[1]
        admin = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres", autocommit=True
        )
        try:
            batch = harness.admit(_batch(now_ms() - 5000))
            assert harness.runtime.queue is not None
            harness.runtime.queue.enqueue(batch)
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

            async def scenario() -> WorkerStats:
                link = JetStreamLink(harness.settings.bus, name="test")
                worker = Worker(harness.settings, "cn", harness.runtime.processor, link)
                stop = asyncio.Event()
                running = asyncio.create_task(worker.run(stop))
                try:
                    while worker.stats.retried < 2 and not running.done():  # refused: nak-ed, delivered again
                        await asyncio.sleep(0.1)
                    assert harness.receipt(batch.batch_id)["status"] == "pending"
                    admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
                    while worker.stats.processed < 1 and not running.done():
                        await asyncio.sleep(0.1)
                    stop.set()
                    return await asyncio.wait_for(running, 30)
                finally:
                    worker.close()
                    await link.close()

            stats = asyncio.run(scenario())
            assert stats.retried >= 2 and stats.processed == 1 and stats.refused == 0
            assert harness.receipt(batch.batch_id)["status"] == "done"
            assert harness.count() == 2 and harness.kinds() == ["collect", "store"]
        finally:
            with contextlib.suppress(psycopg.Error):
                admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            admin.close()
            harness.runtime.close()


# -- receipts, health and the choice of mode ----------------------------------------------------------------------


def test_a_receipt_is_pending_then_answered_and_only_to_its_vehicle(harness: Harness) -> None:
    other = harness.runtime.vehicles.add(CN_VIN_2, "CN").token
    with TestClient(create_app(harness.runtime)) as client:
        sent = client.post("/v1/ingest", json=_batch(now_ms() - 5000), headers=auth(harness.token))
        assert sent.status_code == 202 and sent.headers["location"] == f"/v1/receipts/{sent.json()['receipt']}"
        location = sent.headers["location"]
        assert client.get(location, headers=auth(harness.token)).json()["status"] == "pending"
        foreign = client.get(location, headers=auth(other))
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
        assert client.get("/v1/receipts/not-a-receipt", headers=auth(harness.token)).status_code == 422
        assert client.get(location).status_code == 401

        frame = client.post(
            "/v1/frames?msg_id=f-1&camera=front&ts=" + str(now_ms() - 1000),
            content=noise_jpeg(),
            headers={**auth(harness.token), "Content-Type": "image/jpeg"},
        )
        assert frame.status_code == 202
        frame_id = frame.json()["receipt"]

        async def drain() -> WorkerStats:
            link = JetStreamLink(harness.settings.bus, name="test")
            try:
                stats = await harness.work(link, idle_exit_s=2)
                # the frame's image went through the payload store and was deleted after its commit
                handles = await link.region("cn")
                with pytest.raises(nats.js.errors.NotFoundError):
                    await handles.payloads.get(frame_id)
                return stats
            finally:
                await link.close()

        assert asyncio.run(drain()).processed == 2
        done = client.get(location, headers=auth(harness.token)).json()
        assert done["status"] == "done" and done["result"]["accepted"] == 2
        framed = client.get(f"/v1/receipts/{frame_id}", headers=auth(harness.token)).json()
        assert framed["result"]["stored"] is True and framed["result"]["categories"] == ["general"]


def test_a_frame_travels_by_reference_and_a_tampered_payload_is_refused(harness: Harness) -> None:
    meta = FrameMeta("f-9", "front", now_ms() - 1000)
    frame = harness.runtime.frames.admit(harness.vehicle, noise_jpeg(), meta)

    async def peek() -> tuple[BatchRef, bytes, str]:
        link = JetStreamLink(harness.settings.bus, name="test")
        try:
            await link.publish(frame)
            subscription = await link.consumer("cn")
            [message] = await subscription.fetch(1, timeout=5)
            ref = msgspec.msgpack.decode(message.data, type=BatchRef)
            payload = await link.fetch_payload(ref)
            handles = await link.region("cn")
            await handles.payloads.put(ref.batch_id, payload[:-1] + b"\0")  # someone changed the image in NATS
            with pytest.raises(BatchFormatError) as tampered:
                await link.fetch_payload(ref)
            await message.nak()
            return ref, payload, tampered.value.message
        finally:
            await link.close()

    ref, payload, refusal = asyncio.run(peek())
    assert ref.batch_id == frame.batch_id and ref.size == len(frame.encode()) and payload == frame.encode()
    assert "is not the one its reference names" in refusal


def test_embedded_mode_keeps_no_receipts(client: TestClient, workspace: Any) -> None:
    token = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    sent = client.post("/v1/ingest", json=_batch(now_ms() - 5000), headers=auth(token))
    assert sent.status_code == 200 and sent.json()["accepted"] == 2
    missing = client.get("/v1/receipts/" + "0" * 32, headers=auth(token))
    assert missing.status_code == 404 and "runs embedded" in missing.json()["error"]["message"]
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["dependencies"] == {"database": {"cn": "ok", "eu": "ok"}}


def test_nats_down_is_a_503_and_named_by_health(tmp_path: Path, bus_prefix: str) -> None:
    closed = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    ws = distributed_workspace(tmp_path, closed, bus_prefix)
    runtime = ws.runtime()
    try:
        token = runtime.vehicles.add(CN_VIN, "CN").token
        with TestClient(create_app(runtime)) as client:
            refused = client.post("/v1/ingest", json=_batch(now_ms() - 5000), headers=auth(token))
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == "bus_unavailable"
            health = client.get("/v1/health")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
            assert health.json()["dependencies"] == {"database": {"cn": "ok", "eu": "ok"}, "bus": "down"}
        assert runtime.regions["cn"].store.count_records() == 0
    finally:
        runtime.close()
    gateway = subprocess.run(
        [sys.executable, "-m", "onshore", "serve", "-c", str(ws.config), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gateway.returncode == 1 and "cannot reach NATS at bus.url" in gateway.stderr


def test_the_role_must_match_the_configured_bus(workspace: Any) -> None:
    wrong = subprocess.run(
        [sys.executable, "-m", "onshore", "serve", "-c", str(workspace.config), "--role", "gateway"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and '--role gateway needs [bus] kind = "nats"' in wrong.stderr
    worker = subprocess.run(
        [sys.executable, "-m", "onshore", "worker", "--region", "cn", "-c", str(workspace.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 2 and 'set [bus] kind = "nats"' in worker.stderr


def test_metrics_report_the_queue_depth_the_stream_holds(harness: Harness) -> None:
    def depth() -> float:
        text = harness.runtime.metrics_text().decode()
        [line] = [x for x in text.splitlines() if x.startswith('onshore_queue_depth{region="cn"}')]
        return float(line.rsplit(" ", 1)[1])

    assert harness.runtime.queue is not None
    ts = now_ms() - 5000
    for n in range(3):
        harness.runtime.queue.enqueue(harness.admit(_batch(ts + 10 * n, prefix=f"q{n}-")))
    assert depth() == 3  # published, no worker yet

    async def drain() -> WorkerStats:
        link = JetStreamLink(harness.settings.bus, name="test")
        try:
            return await harness.work(link, idle_exit_s=1.5)
        finally:
            await link.close()

    assert asyncio.run(drain()).processed == 3
    assert depth() == 0
