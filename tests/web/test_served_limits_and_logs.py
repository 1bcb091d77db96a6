"""A real `onshore serve` process: slow or vanishing clients hold no processing place, a vehicle over its
cap gets 429, and nothing personal (positions, VINs, tokens) appears in anything the server writes.

The server runs with one frame processing place (``frames.max_in_flight = 1``), one upload per vehicle
(``limits.vehicle_max_in_flight = 1``) and short body deadlines (frames 15 s, long enough for the other uploads
on a loaded machine; ingest 3 s), so each property shows in seconds.
"""

from __future__ import annotations

import io
import logging
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from onshore.auth import Principal, Role
from onshore.config import load_settings
from onshore.errors import RateLimitedError
from onshore.runtime import Runtime
from onshore.vision.ingest import POSITION_HEADER
from onshore.web.app import create_app
from onshore.web.limits import TokenBuckets
from onshore.web.logs import RedactingFilter
from onshore.web.server import free_port
from onshore.workspace import init_workspace
from tests.conftest import CN_VIN, CN_VIN_2, EU_VIN, auth, now_ms
from tests.servers import start_server

# Distinctive positions: their digits must not appear anywhere in the server's output.
PLAIN = ("31.230417", "121.473701")
ZONE = ("26.647513", "106.710281")  # inside cn-auto's illustrative sensitive zone
SECRET_DIGITS = [*PLAIN, *ZONE, "31.2304", "121.4737", "26.6475", "106.7102"]


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
    return bytes(cv2.imencode(".jpg", image)[1])


@dataclass
class Served:
    url: str
    port: int
    log: Path
    tokens: dict[str, str]  # slow, fast, gone: vehicle tokens

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    config, _ = init_workspace(folder)
    runtime = Runtime(load_settings(config, env={}), create=True)
    tokens = {
        "slow": runtime.vehicles.add(CN_VIN, "CN").token,
        "fast": runtime.vehicles.add(CN_VIN_2, "CN").token,
        "gone": runtime.vehicles.add(EU_VIN, "EU").token,
    }
    runtime.close()
    port = free_port()
    log = folder / "server.out"
    env = {
        "ONSHORE_FRAMES__MAX_IN_FLIGHT": "1",
        "ONSHORE_FRAMES__BODY_TIMEOUT_S": "15",
        "ONSHORE_INGEST__BODY_TIMEOUT_S": "3",
        "ONSHORE_LIMITS__VEHICLE_MAX_IN_FLIGHT": "1",
    }
    proc = start_server(config, port, log, env=env, both_streams=True, timeout_s=30)
    url = f"http://127.0.0.1:{port}"
    try:
        yield Served(url, port, log, tokens)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _frame_head(token: str, msg_id: str, length: int) -> bytes:
    return (
        f"POST /v1/frames?msg_id={msg_id}&camera=front&ts={now_ms() - 1000} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: image/jpeg\r\n"
        f"{POSITION_HEADER}: {PLAIN[0]},{PLAIN[1]}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _trickle(sock: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send ``data`` a few bytes at a time, about 16 bytes a second, until stopped or refused."""
    for start in range(0, len(data), 4):
        if stop.is_set():
            return
        try:
            sock.sendall(data[start : start + 4])
        except OSError:
            return
        time.sleep(0.25)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (it does after a 408)."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_slow_upload_blocks_no_other_vehicle_and_its_own_second_upload_gets_429(served: Served) -> None:
    frame = _jpeg(1)
    slow = socket.create_connection(("127.0.0.1", served.port))
    stop = threading.Event()
    slow.sendall(_frame_head(served.tokens["slow"], "slow-1", len(frame)))
    sender = threading.Thread(target=_trickle, args=(slow, frame, stop), daemon=True)
    sender.start()
    try:
        time.sleep(0.5)  # the slow body is being read: with the old order it held the only processing place
        with httpx.Client(base_url=served.url, timeout=60) as client:
            fast = client.post(
                "/v1/frames",
                params={"msg_id": "fast-1", "camera": "front", "ts": now_ms() - 1000},
                content=_jpeg(2),
                headers={**auth(served.tokens["fast"]), "Content-Type": "image/jpeg"},
            )
            assert fast.status_code == 200, fast.text
            assert fast.json()["stored"] is True
            second = client.post(
                "/v1/frames",
                params={"msg_id": "slow-2", "camera": "front", "ts": now_ms() - 1000},
                content=frame,
                headers={**auth(served.tokens["slow"]), "Content-Type": "image/jpeg"},
            )
        assert second.status_code == 429, second.text
        assert int(second.headers["Retry-After"]) >= 1
        assert second.json()["error"]["code"] == "rate_limited"
        assert "limits.vehicle_max_in_flight" in second.json()["error"]["message"]
        # the slow one is cut off at frames.body_timeout_s (15 s here) with 408, not held for as long as it likes
        slow.settimeout(40)
        answer = _read_until_closed(slow).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
        assert "frames.body_timeout_s" in answer and "request_timeout" in answer
    finally:
        stop.set()
        slow.close()
        sender.join(timeout=5)


def test_a_client_vanishing_mid_body_is_one_log_line_and_no_traceback(served: Served) -> None:
    before = served.output()
    frame = _jpeg(3)
    with socket.create_connection(("127.0.0.1", served.port)) as gone:
        gone.sendall(_frame_head(served.tokens["gone"], "gone-1", len(frame)) + frame[: len(frame) // 2])
        time.sleep(0.3)
    body = b'[{"msg_id":"g1","ts":1,"signal":"VehicleSpeed","value":1}]'
    with socket.create_connection(("127.0.0.1", served.port)) as gone:
        gone.sendall(
            b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {served.tokens['gone']}\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while served.output().count("client disconnected mid-body") - before.count("client disconnected") < 2:
        assert time.monotonic() < deadline, served.output()[len(before) :]
        time.sleep(0.1)
    new = served.output()[len(before) :]
    lines = [line for line in new.splitlines() if "disconnected" in line]
    assert len(lines) == 2, new
    assert "/v1/frames" in lines[0] and "/v1/ingest" in lines[1]
    assert "Traceback" not in new and "Exception in ASGI application" not in new, new


def test_nothing_personal_appears_in_anything_the_server_writes(served: Served) -> None:
    fast = served.tokens["fast"]
    fake_token = "ons_sub_ThisIsNotARealToken123"
    with httpx.Client(base_url=served.url, timeout=60) as client:
        location = {"latitude": float(PLAIN[0]), "longitude": float(PLAIN[1])}
        for batch in range(3):
            records = [
                {"msg_id": f"p{batch}-{i}", "ts": now_ms() - 1000, "signal": "Location", "value": location}
                for i in range(5)
            ]
            assert client.post("/v1/ingest", json=records, headers=auth(fast)).status_code in (200, 429)
            time.sleep(0.1)
        for n, (lat, lon) in enumerate([PLAIN, ZONE]):
            response = client.post(
                "/v1/frames",
                params={"msg_id": f"pos-{n}", "camera": "front", "ts": now_ms() - 1000},
                content=_jpeg(10 + n),
                headers={**auth(fast), "Content-Type": "image/jpeg", POSITION_HEADER: f"{lat},{lon}"},
            )
            assert response.status_code == 200, response.text
        assert response.json()["dropped"] == "sensitive_zone"
        # an old client still sending the position in the query string is refused, and the query is not logged
        old = client.post(
            "/v1/frames",
            params={"msg_id": "old-1", "camera": "front", "ts": now_ms() - 1000, "lat": ZONE[0], "lon": ZONE[1]},
            content=_jpeg(12),
            headers={**auth(fast), "Content-Type": "image/jpeg"},
        )
        assert old.status_code == 422
        # bad requests carrying a VIN and tokens in the path, the query, the body and the headers
        bad = [
            client.get(f"/v1/records/{CN_VIN}", params={"vin": CN_VIN, "token": fast, "lat": PLAIN[0]}),
            client.get(f"/v1/consents/{fake_token}/{CN_VIN.lower()}"),
            client.get(f"/v1/vehicles/{fast}"),
            client.post(
                "/v1/ingest",
                json=[{"msg_id": "v", "ts": 1, "signal": "S", "value": 1, "vin": CN_VIN}],
                headers=auth(fast),
            ),  # fmt: skip
            client.get("/v1/subjects/me/consents", headers=auth(fake_token)),
            client.get(f"/v1/records?region=cn&signal={CN_VIN}", headers=auth(fake_token)),
            client.post(f"/v1/border/bases?{CN_VIN}={fast}", content=b"{" * 50, headers=auth(fake_token)),
        ]
        assert all(400 <= r.status_code < 500 for r in bad), [r.status_code for r in bad]
    time.sleep(0.3)
    output = served.output()
    assert "POST /v1/ingest" in output and "POST /v1/frames 200" in output  # the access log is on
    assert "GET /v1/records/[redacted] 404" in output  # and the VIN in the path was masked
    leaks = [s for s in [*SECRET_DIGITS, CN_VIN, CN_VIN.lower(), fast, fake_token, "ons_sub_"] if s in output]
    assert not leaks, f"found in the server output: {leaks}"
    assert "?" not in "".join(line for line in output.splitlines() if "/v1/" in line)  # no query strings


def test_a_vehicle_over_its_request_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    config, _ = init_workspace(tmp_path)
    overrides = {"limits": {"vehicle_rate_per_s": 0.5, "vehicle_burst": 3}}
    runtime = Runtime(load_settings(config, env={}, overrides=overrides), create=True)
    try:
        greedy = runtime.vehicles.add(CN_VIN, "CN").token
        other = runtime.vehicles.add(CN_VIN_2, "CN").token
        with TestClient(create_app(runtime)) as client:
            answers = [client.get("/v1/consents", headers=auth(greedy)) for _ in range(4)]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]
            refused = answers[-1]
            assert refused.headers["Retry-After"] == "2"  # one token at 0.5 a second
            assert refused.json()["error"]["code"] == "rate_limited"
            assert "limits.vehicle_rate_per_s" in refused.json()["error"]["message"]
            assert client.get("/v1/consents", headers=auth(other)).status_code == 200  # its own share
    finally:
        runtime.close()


def test_token_buckets_refill_at_their_rate_and_forget_idle_keys() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 2, clock=lambda: now[0], max_keys=2)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") == 0.5
    for key in ("b", "c", "d"):
        buckets.take(key)
    now[0] = 10.0
    buckets.take("e")
    assert len(buckets._buckets) <= 3  # the full ones were forgotten


def test_the_log_filter_masks_vins_positions_and_tokens_in_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("onshore.test-redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("vehicle %s at %s", CN_VIN, "31.230417,121.473701")
        logger.warning("value %s", {"latitude": 26.647513, "longitude": 106.710281, "token": "onv_cn_abcdefgh"})
        logger.warning("header Authorization: Bearer sk-anything-else")
        try:
            raise ValueError(f"bad vin {CN_VIN.lower()} from ons_Zm9vYmFyYmF6cXV4")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    for secret in [CN_VIN, CN_VIN.lower(), "31.230417", "121.473701", "26.647513", "106.710281", "onv_cn_abcdefgh",
                   "sk-anything-else", "ons_Zm9vYmFyYmF6cXV4"]:  # fmt: skip
        assert secret not in text, text
    assert text.count("[redacted]") >= 8 and "Traceback" in text and "ValueError" in text


def test_a_gateway_has_a_share_of_its_own_rate_and_uploads(tmp_path: Path) -> None:
    config, issued = init_workspace(tmp_path)
    gateway = next(t.token for t in issued if t.role == "gateway")
    overrides = {"limits": {"gateway_rate_per_s": 0.5, "gateway_burst": 3, "gateway_max_in_flight": 2}}
    runtime = Runtime(load_settings(config, env={}, overrides=overrides), create=True)
    try:
        vehicle = runtime.vehicles.add(CN_VIN, "CN").token
        with TestClient(create_app(runtime)) as client:
            answers = [client.get("/v1/records", params={"region": "cn"}, headers=auth(gateway)) for _ in range(4)]
            assert [a.status_code for a in answers] == [403, 403, 403, 429]  # counted before the role is checked
            assert answers[-1].headers["Retry-After"] == "2"
            assert "limits.gateway_rate_per_s" in answers[-1].json()["error"]["message"]
            assert client.get("/v1/consents", headers=auth(vehicle)).status_code == 200  # a vehicle's own share
            limits = client.app.state.limits  # type: ignore[attr-defined]
        principal = client.app.state.auth.authenticate(vehicle)  # type: ignore[attr-defined]
        fleet = Principal(role=Role.GATEWAY, name="fleet-a")
        with limits.upload_place(fleet), limits.upload_place(fleet):
            with pytest.raises(RateLimitedError, match="limits.gateway_max_in_flight"):
                limits.upload_place(fleet).__enter__()
            with limits.upload_place(Principal(role=Role.GATEWAY, name="fleet-b")):
                pass  # another gateway is not held up
            with limits.upload_place(principal):
                pass  # nor a vehicle
    finally:
        runtime.close()
