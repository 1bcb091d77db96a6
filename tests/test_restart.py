"""A real server process: killing it (SIGKILL) mid-stream loses no acknowledged record and duplicates none."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.web.server import free_port
from onshore.workspace import init_workspace
from tests.conftest import CN_VIN, now_ms
from tests.servers import start_server


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    return start_server(config, port, config.parent / "server.log", timeout_s=30)


def test_sigkill_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    config, _ = init_workspace(tmp_path)
    settings = load_settings(config, env={})
    runtime = Runtime(settings, create=True)
    token = runtime.vehicles.add(CN_VIN, "CN").token
    runtime.close()

    port = free_port()
    proc = _start(config, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send() -> None:
        seq = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while not stop.is_set():
                ids = [f"k{seq + i}" for i in range(200)]
                body = [{"msg_id": m, "ts": now_ms(), "signal": "VehicleSpeed", "value": 10} for m in ids]
                seq += 200
                try:
                    r = client.post("/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.extend(ids)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    sender.join(timeout=10)
    assert acknowledged, "no batch was acknowledged before the kill"

    proc = _start(config, port)
    try:
        runtime = Runtime(load_settings(config, env={}))
        stored = [r["msg_id"] for r in runtime.regions["cn"].store.query_records(limit=1_000_000)]
        runtime.close()
        assert set(acknowledged) <= set(stored), "an acknowledged record was lost"
        assert len(stored) == len(set(stored)), "a record was stored twice"
        assert len(stored) % 200 == 0, "a batch was half-written"
        # the client resends everything after the restart (at-least-once): nothing is duplicated
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            body = [{"msg_id": m, "ts": now_ms(), "signal": "VehicleSpeed", "value": 10} for m in acknowledged[:1000]]
            r = client.post("/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.json()["accepted"] == 0 and r.json()["duplicate"] == len(body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
