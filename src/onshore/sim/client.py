"""Drive a simulated fleet against a running onshore server over HTTP.

Vehicles are split over a pool of worker threads; each worker owns one keep-alive ``httpx.Client``
and sends its vehicles' batches round-robin as NDJSON to ``POST /v1/ingest`` with the vehicle's bearer
token. The run stops by itself after ``n_ticks`` simulated ticks per vehicle, after ``duration_s``
wall-clock seconds, or after repeated connection failures, whichever comes first. Only ``base_url``
is ever contacted, and proxy settings from the environment are ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from onshore.sim.fleet import FleetSimulator, SimBatch
from onshore.sim.vehicle import SimulatedVehicle

INGEST_PATH = "/v1/ingest"
NDJSON_CONTENT_TYPE = "application/x-ndjson"
TRANSPORT_ERROR_STATUS = 0  # the key under which requests that got no HTTP answer are counted


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What the server answered to one batch."""

    vin: str
    status: int  # HTTP status, or TRANSPORT_ERROR_STATUS when no answer came
    records: int
    body: dict[str, Any] | None  # the parsed JSON answer, when there was one


@dataclass(slots=True)
class FleetRunSummary:
    """Totals of one fleet run, from the server's answers."""

    requests: int = 0
    records_sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    dropped_no_consent: int = 0
    errors_by_status: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def records_per_s(self) -> float:
        """Records sent per wall-clock second."""
        return self.records_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, result: BatchResult) -> None:
        """Count one batch's answer."""
        self.requests += 1
        self.records_sent += result.records
        if 200 <= result.status < 300 and result.body is not None:
            self.accepted += int(result.body.get("accepted", 0))
            self.duplicate += int(result.body.get("duplicate", 0))
            self.dropped_no_consent += int(result.body.get("dropped_no_consent", 0))
        elif not 200 <= result.status < 300:
            self.errors_by_status[result.status] = self.errors_by_status.get(result.status, 0) + 1

    def merge(self, other: FleetRunSummary) -> None:
        """Add another summary's counts to this one (elapsed time is not added)."""
        self.requests += other.requests
        self.records_sent += other.records_sent
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.dropped_no_consent += other.dropped_no_consent
        for status, count in other.errors_by_status.items():
            self.errors_by_status[status] = self.errors_by_status.get(status, 0) + count


@dataclass(frozen=True, slots=True)
class _RunPlan:
    base_url: str
    tokens: dict[str, str]
    n_ticks: int | None
    deadline: float | None  # time.monotonic() after which no request starts
    batch_size: int
    flush_ticks: int | None
    realtime: bool
    request_timeout_s: float
    max_consecutive_failures: int
    on_result: Callable[[BatchResult], None] | None


def run_fleet_http(
    base_url: str,
    fleet: FleetSimulator,
    tokens: dict[str, str],
    *,
    n_ticks: int | None = None,
    duration_s: float | None = None,
    batch_size: int = 500,
    concurrency: int = 4,
    flush_ticks: int | None = None,
    realtime: bool = False,
    on_result: Callable[[BatchResult], None] | None = None,
    request_timeout_s: float = 30.0,
    max_consecutive_failures: int = 5,
) -> FleetRunSummary:
    """Send the fleet's records to ``base_url`` until the run's bound is reached.

    Args:
        base_url: the onshore server, e.g. "http://127.0.0.1:8000".
        fleet: the simulator; its vehicles' streams continue where they were.
        tokens: the bearer token of every vehicle of the fleet, by VIN.
        n_ticks: simulated ticks per vehicle; each vehicle stops after them.
        duration_s: wall-clock seconds after which no new request starts.
        batch_size: most records per request.
        concurrency: worker threads, each with one keep-alive connection.
        flush_ticks: also send a partial batch once this many ticks have gathered (for live demos).
        realtime: hold each batch until wall-clock time since the start catches up with its
            simulated time, so that ``tick_s`` seconds of driving take ``tick_s`` seconds.
        on_result: called with each ``BatchResult``, from the worker threads.
        request_timeout_s: timeout of each request.
        max_consecutive_failures: a worker whose requests fail this many times in a row without an
            answer stops the whole run (the server is gone).

    Returns:
        The totals of the run.

    Raises:
        ValueError: neither ``n_ticks`` nor ``duration_s`` bounds the run, a size is not positive, or
            a vehicle has no token.
    """
    if n_ticks is None and duration_s is None:
        raise ValueError("bound the run with n_ticks or duration_s")
    if batch_size < 1 or concurrency < 1:
        raise ValueError(f"batch_size and concurrency must be at least 1, got {batch_size}, {concurrency}")
    missing = [vehicle.vin for vehicle in fleet.vehicles if vehicle.vin not in tokens]
    if missing:
        raise ValueError(f"{len(missing)} vehicles have no token, e.g. {missing[0]!r}")
    started = time.monotonic()
    plan = _RunPlan(
        base_url=base_url.rstrip("/"),
        tokens=tokens,
        n_ticks=n_ticks,
        deadline=None if duration_s is None else started + duration_s,
        batch_size=batch_size,
        flush_ticks=flush_ticks,
        realtime=realtime,
        request_timeout_s=request_timeout_s,
        max_consecutive_failures=max_consecutive_failures,
        on_result=on_result,
    )
    shares = [fleet.vehicles[index::concurrency] for index in range(concurrency)]
    stop = threading.Event()
    summary = FleetRunSummary()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="onshore-sim") as pool:
        futures = [pool.submit(_drive_share, plan, fleet, share, started, stop) for share in shares if share]
        try:
            for future in futures:
                summary.merge(future.result())
        finally:
            stop.set()
    summary.elapsed_s = time.monotonic() - started
    return summary


def _drive_share(
    plan: _RunPlan,
    fleet: FleetSimulator,
    vehicles: list[SimulatedVehicle],
    started: float,
    stop: threading.Event,
) -> FleetRunSummary:
    """One worker: send its vehicles' batches round-robin over one keep-alive connection."""
    summary = FleetRunSummary()
    streams: list[Iterator[SimBatch]] = [
        fleet.batch_stream(vehicle, plan.batch_size, plan.n_ticks, plan.flush_ticks) for vehicle in vehicles
    ]
    failures_in_a_row = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=plan.base_url, timeout=plan.request_timeout_s, limits=limits, trust_env=False) as client:
        while streams and not stop.is_set():
            still_running = []
            for stream in streams:
                if stop.is_set() or (plan.deadline is not None and time.monotonic() >= plan.deadline):
                    return summary
                batch = next(stream, None)
                if batch is None:
                    continue
                still_running.append(stream)
                if plan.realtime and not _wait_until_due(fleet, batch, started, plan.deadline, stop):
                    return summary
                result = _send(client, plan, batch)
                summary.add(result)
                if plan.on_result is not None:
                    plan.on_result(result)
                failures_in_a_row = failures_in_a_row + 1 if result.status == TRANSPORT_ERROR_STATUS else 0
                if failures_in_a_row >= plan.max_consecutive_failures:
                    stop.set()
                    return summary
            streams = still_running
    return summary


def _wait_until_due(
    fleet: FleetSimulator, batch: SimBatch, started: float, deadline: float | None, stop: threading.Event
) -> bool:
    """Sleep until the batch's simulated time has come; False when the run ends first."""
    due = started + (batch.ready_at_ms - fleet.start_ms) / 1000.0
    if deadline is not None and due >= deadline:
        return False
    wait_s = due - time.monotonic()
    return wait_s <= 0 or not stop.wait(wait_s)


def _send(client: httpx.Client, plan: _RunPlan, batch: SimBatch) -> BatchResult:
    vin = batch.vehicle.vin
    headers = {"Authorization": f"Bearer {plan.tokens[vin]}", "Content-Type": NDJSON_CONTENT_TYPE}
    try:
        response = client.post(INGEST_PATH, content=batch.ndjson, headers=headers)
    except httpx.TransportError:
        return BatchResult(vin, TRANSPORT_ERROR_STATUS, batch.records, None)
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    return BatchResult(vin, response.status_code, batch.records, body if isinstance(body, dict) else None)
