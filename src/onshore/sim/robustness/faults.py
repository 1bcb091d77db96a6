"""The harness of fault injection with real parts: a deployment (a workspace, real `onshore serve` processes), a
client that streams records at least once, and the checks that follow a fault.

`Deployment` holds a workspace whose vehicles have consented, its servers and their logs. `RecordStream` sends
batches of records with unique message ids from one vehicle and resends a batch until it is acknowledged,
the way a vehicle does: after a 503 (which must carry ``Retry-After``), a 429, or no answer at all.
`settle` then checks what a fault may never cost (`FaultOutcome`): every acknowledged record stored exactly
once, no batch half-written, no 5xx but a 503 with ``Retry-After`` and the error shape, `onshore ledger verify`
exit 0, and nothing personal in what the servers wrote. The scenarios (`onshore.sim.robustness.scenarios`) are
built from these parts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from onshore import clock
from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.sim.consents import grant_collection_consents
from onshore.sim.robustness.leaks import find_leaks
from onshore.sim.servers import start_server, stop_server
from onshore.web.server import free_port
from onshore.workspace import init_workspace

# Synthetic VINs (ISO 3779 alphabet, no real vehicle), one per streaming vehicle.
VINS = tuple(f"LSVM0FALT{n:08d}" for n in range(1, 9))
SQLITE_CN = 'record_store = "sqlite:///onshore-data/cn/records.sqlite"'
PgDatabase = Callable[[], contextlib.AbstractContextManager[str]]  # a fresh database's URL, dropped afterwards


@dataclass
class Deployment:
    """A workspace with consenting vehicles, and the `onshore serve` processes started on it."""

    folder: Path
    config: Path
    vins: list[str]
    tokens: list[str]  # vehicle tokens, in the order of ``vins``
    api_tokens: list[str]
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, preexec_fn: Callable[[], None] | None = None, env: dict[str, str] | None = None) -> None:
        """Start a server on the deployment's port (a new log file each time)."""
        log = self.folder / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        self.proc = start_server(
            self.config, self.port, log, env={**self.env, **(env or {})}, both_streams=True, timeout_s=60,
            preexec_fn=preexec_fn,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no flush, whatever it was doing."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)

    def close(self) -> None:
        """Kill a server still running (a scenario that failed half-way leaves none behind)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def secrets(self, positions: list[str]) -> dict[str, str]:
        """What must never appear in the servers' output: VINs, tokens and (a sample of) the positions sent."""
        return {
            **{f"vin {i}": vin for i, vin in enumerate(self.vins)},
            **{f"vehicle token {i}": t for i, t in enumerate(self.tokens)},
            **{f"api token {i}": t for i, t in enumerate(self.api_tokens)},
            **{f"position {i}": p for i, p in enumerate(positions[:: max(1, len(positions) // 500)])},
        }

    def output(self) -> str:
        """Everything the deployment's servers wrote (stdout and stderr of every start)."""
        return "".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def stored(self) -> list[tuple[str, str]]:
        """(vehicle ref, message id) of every stored record, in every region."""
        runtime = Runtime(load_settings(self.config, env=self.env))
        try:
            out: list[tuple[str, str]] = []
            for region in runtime.regions.values():
                after = 0
                while page := region.store.query_records(after_id=after, limit=1000):
                    out.extend((row["vehicle_ref"], row["msg_id"]) for row in page)
                    after = page[-1]["id"]
            return out
        finally:
            runtime.close()

    def verify_ledger(self) -> tuple[int, str]:
        """`onshore ledger verify -c CONFIG` (every region, as the operator): (exit code, the end of its output)."""
        done = subprocess.run(
            [sys.executable, "-m", "onshore", "ledger", "verify", "-c", str(self.config)],
            capture_output=True, text=True, env={**os.environ, **self.env}, timeout=600,
        )  # fmt: skip
        return done.returncode, done.stdout[-1500:] + done.stderr[-1500:]


def make_deployment(
    folder: Path, *, vehicles: int = 2, record_store: str | None = None, gateway: str | None = None
) -> Deployment:
    """A fresh workspace in ``folder`` with ``vehicles`` registered (to ``gateway`` when given: the workspace's
    gateway token is ``gateway``), their owners consenting; the cn region's records on ``record_store`` (a
    PostgreSQL URL) when given, else SQLite."""
    config, issued = init_workspace(folder)
    env: dict[str, str] = {}
    if record_store is not None:
        text = config.read_text(encoding="utf-8")
        assert SQLITE_CN in text, "the workspace's cn record store is not where it used to be"
        config.write_text(text.replace(SQLITE_CN, f'record_store = "{record_store}"'), encoding="utf-8")
    runtime = Runtime(load_settings(config, env=env), create=True)
    try:
        tokens = []
        for vin in VINS[:vehicles]:
            token = runtime.vehicles.add(vin, "CN", gateway=gateway)
            grant_collection_consents(runtime, token.vehicle)
            tokens.append(token.token)
    finally:
        runtime.close()
    return Deployment(folder, config, list(VINS[:vehicles]), tokens, [t.token for t in issued], env=env)


@dataclass
class StreamCounts:
    """What one stream's client saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    no_answer: int = 0  # connection refused or cut: the server was down
    unavailable: int = 0  # 503 with Retry-After and the error shape: the expected answer while a fault lasts
    server_errors: list[str] = field(default_factory=list)  # any other 5xx (a 503 without Retry-After included)
    unexpected: list[str] = field(default_factory=list)  # 4xx other than 429


def stream_records(prefix: str, seq: int, batch: int) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Batch ``seq`` of a stream: its message ids, its records (speeds, and a position in ten) and the positions
    as text (distinctive digits: none may ever appear in a log)."""
    ts = clock.now_ms() - 1000
    ids = [f"{prefix}-{seq}-{i}" for i in range(batch)]
    records: list[dict[str, Any]] = []
    positions: list[str] = []
    for i, msg_id in enumerate(ids):
        if i % 10 == 0:
            lat, lon = 31.2 + (seq % 997) * 1e-4 + i * 1e-6 + 3.1e-7, 121.4 + i * 1e-6 + 7.3e-7
            positions.append(f"{lat:.6f}")
            value: Any = {"latitude": round(lat, 7), "longitude": round(lon, 7)}
            records.append({"msg_id": msg_id, "ts": ts, "signal": "Location", "value": value})
        else:
            records.append({"msg_id": msg_id, "ts": ts, "signal": "VehicleSpeed", "value": i % 130})
    return ids, records, positions


class RecordStream:
    """One vehicle sending batches of ``batch`` records (speed, temperature and positions) as fast as answered,
    each batch resent until acknowledged (at least once), until `finish`."""

    def __init__(self, deployment: Deployment, index: int, *, batch: int = 100, prefix: str = "s") -> None:
        self.deployment = deployment
        self.token = deployment.tokens[index]
        self.batch = batch
        self.prefix = f"{prefix}{index}"
        self.sent: list[list[str]] = []  # every batch's message ids, in order
        self.acknowledged: list[list[str]] = []
        self.positions: list[str] = []  # the positions sent, as text: none may appear in a log
        self.counts = StreamCounts()
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.prefix}", daemon=True)

    def start(self) -> RecordStream:
        self._thread.start()
        return self

    def finish(self, timeout_s: float = 120) -> None:
        """Send no new batch; wait until the one in flight is acknowledged (or ``timeout_s`` passes)."""
        self._draining.set()
        self._thread.join(timeout=timeout_s)
        self._stop.set()
        self._thread.join(timeout=10)

    def acknowledged_batches(self) -> int:
        return len(self.acknowledged)

    def replay_first(self) -> str | None:
        """Send the first acknowledged batch again, as a vehicle that lost the answer does: every record must be
        counted a duplicate. Returns what went wrong, or None."""
        if not self.acknowledged:
            return "nothing was acknowledged to replay"
        seq = int(self.acknowledged[0][0].split("-")[1])  # ids are PREFIX-SEQ-I: the same batch again
        ids, body, _positions = stream_records(self.prefix, seq, self.batch)
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.post(f"{self.deployment.url}/v1/ingest", json=body, headers=headers, timeout=60)
        if answer.status_code != 200 or answer.json().get("duplicate") != len(ids) or answer.json().get("accepted"):
            return f"a replayed batch was answered {answer.status_code} {answer.text[:200]}"
        return None

    def _body(self, seq: int) -> tuple[list[str], list[dict[str, Any]]]:
        ids, records, positions = stream_records(self.prefix, seq, self.batch)
        self.positions += positions
        return ids, records

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        seq = 0
        with httpx.Client(base_url=self.deployment.url, timeout=60) as client:
            while not self._stop.is_set() and not self._draining.is_set():
                ids, body = self._body(seq)
                seq += 1
                self.sent.append(ids)
                while not self._stop.is_set():  # this batch until acknowledged
                    if self._send(client, body, headers):
                        self.acknowledged.append(ids)
                        break

    def _send(self, client: httpx.Client, body: list[dict[str, Any]], headers: dict[str, str]) -> bool:
        counts = self.counts
        try:
            response = client.post("/v1/ingest", json=body, headers=headers)
        except httpx.HTTPError:
            counts.no_answer += 1
            time.sleep(0.2)
            return False
        status = response.status_code
        counts.statuses[status] = counts.statuses.get(status, 0) + 1
        if status in (200, 202):  # stored (embedded), or published with a receipt (a gateway)
            return True
        retry_after = response.headers.get("Retry-After", "")
        shaped = _is_error_shape(response)
        if status == 503 and retry_after.isdigit() and shaped:
            counts.unavailable += 1
            time.sleep(min(int(retry_after), 1))
        elif status == 429 and retry_after.isdigit():
            time.sleep(min(int(retry_after), 1))
        elif status >= 500:
            counts.server_errors.append(f"{status} Retry-After={retry_after!r} {response.text[:200]}")
            time.sleep(0.2)
        else:
            counts.unexpected.append(f"{status} {response.text[:200]}")
            time.sleep(0.2)
        return False


def _is_error_shape(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and bool(body["error"].get("code"))


@dataclass
class FaultOutcome:
    """What a scenario's faults cost. `ok` holds when they cost nothing they may not."""

    scenario: str
    faults_injected: int = 0
    acknowledged: int = 0  # records acknowledged (a 200; a gateway's 202; a broker's PUBACK)
    lost: int = 0  # acknowledged but not stored
    duplicates: int = 0  # stored more than once
    half_written: int = 0  # batches stored in part
    server_errors: int = 0  # 5xx other than a 503 with Retry-After and the error shape
    unavailable: int = 0  # 503 with Retry-After: what a client should see while a fault lasts
    unexpected: int = 0  # 4xx other than 429: a fault must not make a valid batch look invalid
    verify_exit: int = 0  # `onshore ledger verify -c CONFIG`
    log_leaks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what went wrong, readable

    @property
    def ok(self) -> bool:
        clean = not (
            self.lost or self.duplicates or self.half_written or self.server_errors or self.unexpected or self.log_leaks
        )
        return clean and self.verify_exit == 0 and self.faults_injected > 0 and self.acknowledged > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "faults_injected": self.faults_injected, "acknowledged": self.acknowledged,
            "lost": self.lost, "duplicates": self.duplicates, "half_written": self.half_written,
            "server_errors": self.server_errors, "unavailable": self.unavailable, "unexpected": self.unexpected,
            "verify_exit": self.verify_exit,
            "log_leaks": len(self.log_leaks), "ok": self.ok,
        }  # fmt: skip


def settle(deployment: Deployment, streams: list[RecordStream], outcome: FaultOutcome) -> FaultOutcome:
    """After the faults: finish the streams against the running server, then count what was lost, duplicated or
    half-written, the server errors, the ledger's verdict and anything personal in the servers' output."""
    for stream in streams:
        stream.finish()
    deployment.stop()
    stored = deployment.stored()
    by_vehicle_id = [msg_id for _ref, msg_id in stored]
    distinct = set(by_vehicle_id)
    outcome.duplicates = len(by_vehicle_id) - len(distinct)
    for stream in streams:
        acknowledged = [m for batch in stream.acknowledged for m in batch]
        outcome.acknowledged += len(acknowledged)
        outcome.lost += len(set(acknowledged) - distinct)
        outcome.half_written += sum(0 < sum(m in distinct for m in batch) < len(batch) for batch in stream.sent)
        counts = stream.counts
        outcome.unavailable += counts.unavailable
        outcome.server_errors += len(counts.server_errors)
        outcome.unexpected += len(counts.unexpected)
        outcome.notes += [f"{stream.prefix}: {e}" for e in counts.server_errors[:3] + counts.unexpected[:3]]
        if len(stream.acknowledged) < len(stream.sent):
            outcome.notes.append(f"{stream.prefix}: {len(stream.sent) - len(stream.acknowledged)} batch never acked")
    outcome.verify_exit, verdict = deployment.verify_ledger()
    if outcome.verify_exit:
        outcome.notes.append(f"ledger verify exited {outcome.verify_exit}: {verdict[-600:]}")
    outcome.log_leaks = find_leaks(deployment.output(), deployment.secrets([p for s in streams for p in s.positions]))
    return outcome


def wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


@contextlib.contextmanager
def serving(deployment: Deployment) -> Iterator[Deployment]:
    """The deployment with its server started; a server still running at the end is killed (a scenario that
    failed half-way leaves none behind)."""
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.close()


@contextlib.contextmanager
def streaming(deployment: Deployment, vehicles: int | None = None, **kw: Any) -> Iterator[list[RecordStream]]:
    """Streams from ``vehicles`` of the deployment (all by default), started; the caller settles them."""
    count = len(deployment.tokens) if vehicles is None else vehicles
    streams = [RecordStream(deployment, i, **kw).start() for i in range(count)]
    try:
        yield streams
    finally:
        for stream in streams:
            stream._stop.set()  # a scenario that failed half-way must not leave threads sending
