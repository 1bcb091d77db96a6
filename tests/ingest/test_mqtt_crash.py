"""kill -9 of `onshore mqtt` mid-stream: every message the broker acknowledged to its publisher is stored after the
restart (the session kept them; what was committed and not yet acknowledged comes again as a duplicate), and the
ledger verifies.

Messages that carry their time (onshore batches, the dispatcher's errors) are stored exactly once; the
dispatcher's per-field messages, which carry none, at least once (docs/mqtt.md).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
from collections import Counter

import orjson
import pytest
from typer.testing import CliRunner

from onshore.cli import app
from tests.conftest import CN_VIN, Workspace
from tests.ingest import ft_payloads as ft
from tests.ingest.mqtt_support import broker, end_session, publish, publisher, start_mqtt, unique_root, wait_for
from tests.ingest.test_fleet_telemetry_http import _rows

pytestmark = pytest.mark.services
N = 300


def _message(base: str, i: int, t0: int) -> tuple[str, bytes]:
    if i % 3 == 0:
        record = {"msg_id": f"b{i}", "ts": t0 + i, "signal": "Odometer", "value": i}
        return f"{base}/onshore/{CN_VIN}/batch", orjson.dumps([record])
    if i % 3 == 1:
        created = dt.datetime.fromtimestamp(t0 // 1000 + i, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        error = {"Body": f"e{i}", "Tags": {"n": str(i)}, "CreatedAt": created}
        return f"{base}/{CN_VIN}/errors/NotifyError", orjson.dumps(error)
    return f"{base}/{CN_VIN}/v/VehicleSpeed", orjson.dumps(float(i))


def test_kill_9_mid_stream_loses_no_acknowledged_message(workspace: Workspace) -> None:
    ws = workspace
    host, port = broker()
    root = unique_root()
    client_id = f"{root}-crash"
    with ws.config.open("a", encoding="utf-8") as config:
        config.write(
            f'\n[mqtt]\nhost = "{host}"\nport = {port}\ntopic_root = "{root}"\nsession_expiry_s = 120\n'
            "flush_ms = 20\nflush_records = 25\n"
        )
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    log = ws.folder / "mqtt.log"
    base = f"{root}/gateway"
    t0 = ft.now_ms() - 3_600_000
    kills = sorted(random.sample(range(20, N - 20), 2))
    store = ws.runtime.regions["cn"].store
    process = start_mqtt(ws.config, client_id, log)
    try:
        with publisher() as pub:
            for i in range(N):
                if i in kills:  # mid-stream: after something was stored, while messages are in flight
                    wait_for(lambda: store.count_records() > 0, what="a first commit")
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    # the broker queues what follows for the session until the subscriber is back
                    for j in range(i, i + 10):
                        publish(pub, *_message(base, j, t0))
                    process = start_mqtt(ws.config, client_id, log)
                if not any(k <= i < k + 10 for k in kills):
                    publish(pub, *_message(base, i, t0))  # returns once the broker acknowledged it
        expected = {i for i in range(N) if i % 3 != 2}
        wait_for(lambda: _counts(ws)[1] >= {f"{i}" for i in range(N) if i % 3 == 2}, what="every datum", timeout_s=20)
        wait_for(lambda: set(_counts(ws)[0]) == expected, what="every record", timeout_s=20)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        end_session(client_id)
    exactly_once, speeds = _counts(ws)
    assert set(exactly_once.values()) == {1}, {k: v for k, v in exactly_once.items() if v != 1}
    assert speeds == {f"{i}" for i in range(N) if i % 3 == 2}
    verified = CliRunner().invoke(app, ["ledger", "verify", "-c", str(ws.config), "--region", "cn"])
    assert verified.exit_code == 0, verified.output


def _counts(ws: Workspace) -> tuple[Counter[int], set[str]]:
    """How often each batch record and error is stored (by its message number), and the speeds stored."""
    counts: Counter[int] = Counter()
    speeds: set[str] = set()
    for row in _rows(ws, CN_VIN):
        value = orjson.loads(row[3])
        if row[2] == "Odometer":
            counts[int(value)] += 1
        elif row[2] == "VehicleError":
            counts[int(value["tags"]["n"])] += 1
        elif row[2] == "VehicleSpeed":
            speeds.add(f"{int(value)}")
    return counts, speeds
