"""A bounded soak: a real `onshore serve` on loopback driven at a steady rate, its memory and latency watched.

`measure_capacity` finds the rate the server takes on this machine (records a second, closed loop, several
vehicles at once); `soak` then sends at a set share of it for a set time, open loop (batches leave on a fixed
schedule whatever the answers), from vehicles spread over client threads. It samples the server's resident memory
twice a second and times every request. The report compares the first and the last fifth of the run (after a
warm-up): ``rss_growth_ratio`` (median RSS, last / first) and ``latency_growth_ratio`` (the larger of the p50 and
p99 ratios), with every non-200 answer counted as an error and the acknowledged records checked stored once.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from onshore.sim.robustness.faults import Deployment, stream_records
from onshore.sim.robustness.leaks import find_leaks
from onshore.sim.servers import rss_bytes


@dataclass
class SoakReport:
    duration_s: float
    rate_records_per_s: float  # what the schedule asked for
    achieved_records_per_s: float  # what was acknowledged
    requests: int
    errors: int  # answers other than 200 (and requests without an answer)
    server_errors: int  # 5xx
    behind_schedule_s: float  # how late the last batch left (the client could not keep the rate)
    rss_start_mb: float
    rss_end_mb: float
    rss_growth_ratio: float
    p50_start_ms: float
    p99_start_ms: float
    p50_end_ms: float
    p99_end_ms: float
    latency_growth_ratio: float
    lost: int = 0
    duplicates: int = 0
    log_leaks: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_capacity(deployment: Deployment, *, seconds: float = 8, threads: int = 4, batch: int = 100) -> float:
    """Records a second the running server acknowledges with ``threads`` vehicles sending back to back."""
    acknowledged = [0] * threads
    stop = time.monotonic() + seconds

    def drive(index: int) -> None:
        headers = {"Authorization": f"Bearer {deployment.tokens[index]}"}
        with httpx.Client(base_url=deployment.url, timeout=60) as client:
            seq = 0
            while time.monotonic() < stop:
                _ids, body, _ = stream_records(f"cap{index}", seq, batch)
                seq += 1
                if client.post("/v1/ingest", json=body, headers=headers).status_code == 200:
                    acknowledged[index] += batch

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(drive, range(threads)))
    return sum(acknowledged) / (time.monotonic() - started)


def soak(
    deployment: Deployment,
    *,
    rate_records_per_s: float,
    duration_s: float,
    batch: int = 100,
    threads: int = 4,
    warmup_s: float | None = None,
) -> SoakReport:
    """Drive the deployment's running server at ``rate_records_per_s`` for ``duration_s`` seconds and report.

    Vehicles take turns (every vehicle of the deployment, so no one exceeds its own rate limit); ``warmup_s``
    (default a tenth of the run) is left out of the start window.
    """
    assert deployment.proc is not None, "start the deployment's server first"
    pid = deployment.proc.pid
    interval = batch / rate_records_per_s
    total = max(1, int(duration_s / interval))
    warmup = duration_s / 10 if warmup_s is None else warmup_s
    samples: list[tuple[float, int]] = []  # (seconds since start, rss bytes)
    timings: list[tuple[float, float, int]] = []  # (seconds since start, latency s, status)
    acknowledged: list[str] = []
    positions: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    local = threading.local()
    clients: list[httpx.Client] = []
    started = time.monotonic()

    def sample_memory() -> None:
        while not done.is_set():
            samples.append((time.monotonic() - started, rss_bytes(pid)))
            done.wait(0.5)

    def send(seq: int) -> float:
        due = started + seq * interval
        time.sleep(max(0.0, due - time.monotonic()))
        late = time.monotonic() - due
        vehicle = seq % len(deployment.tokens)
        ids, body, sent_positions = stream_records(f"soak{vehicle}", seq, batch)
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=deployment.url, timeout=60)
            with lock:
                clients.append(client)
        at = time.monotonic()
        try:
            status = client.post(
                "/v1/ingest", json=body, headers={"Authorization": f"Bearer {deployment.tokens[vehicle]}"}
            ).status_code
        except httpx.HTTPError:
            status = 0
        with lock:
            timings.append((at - started, time.monotonic() - at, status))
            positions.extend(sent_positions[:1])
            if status == 200:
                acknowledged.extend(ids)
        return late

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(threads) as pool:
            lateness = list(pool.map(send, range(total)))
    finally:
        done.set()
        sampler.join(timeout=5)
        for client in clients:
            client.close()
    elapsed = time.monotonic() - started
    window = (elapsed - warmup) / 5
    start_window, end_window = (warmup, warmup + window), (elapsed - window, elapsed)
    rss_start = _median([rss for at, rss in samples if start_window[0] <= at < start_window[1]])
    rss_end = _median([rss for at, rss in samples if end_window[0] <= at <= end_window[1]])
    early = [lat for at, lat, _ in timings if start_window[0] <= at < start_window[1]]
    late = [lat for at, lat, _ in timings if end_window[0] - interval <= at <= end_window[1]]
    p50s, p99s = (_quantile(early, 0.5), _quantile(late, 0.5)), (_quantile(early, 0.99), _quantile(late, 0.99))
    statuses: dict[int, int] = {}
    for _, _, status in timings:
        statuses[status] = statuses.get(status, 0) + 1
    report = SoakReport(
        duration_s=elapsed,
        rate_records_per_s=rate_records_per_s,
        achieved_records_per_s=len(acknowledged) / elapsed,
        requests=len(timings),
        errors=sum(n for status, n in statuses.items() if status != 200),
        server_errors=sum(n for status, n in statuses.items() if status >= 500),
        behind_schedule_s=max(lateness, default=0.0),
        rss_start_mb=rss_start / 2**20,
        rss_end_mb=rss_end / 2**20,
        rss_growth_ratio=rss_end / rss_start if rss_start else float("nan"),
        p50_start_ms=p50s[0] * 1000,
        p99_start_ms=p99s[0] * 1000,
        p50_end_ms=p50s[1] * 1000,
        p99_end_ms=p99s[1] * 1000,
        latency_growth_ratio=max(p50s[1] / p50s[0], p99s[1] / p99s[0]) if p50s[0] and p99s[0] else float("nan"),
        statuses=statuses,
    )
    stored = [msg_id for _ref, msg_id in deployment.stored() if msg_id.startswith("soak")]
    distinct = set(stored)
    report.duplicates = len(stored) - len(distinct)
    report.lost = len(set(acknowledged) - distinct)
    report.log_leaks = len(find_leaks(deployment.output(), deployment.secrets(positions)))
    return report


def _median(values: list[int]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
