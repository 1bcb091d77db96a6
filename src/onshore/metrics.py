"""Prometheus metrics of one onshore process: what came in, what was kept, what was refused, and how fast.

Every process (a server, a gateway, a worker) has one `Metrics`, built by the `Runtime`, with a registry of its
own (a test or a bench may build several runtimes in one interpreter). ``GET /metrics`` serves it in the text
format Prometheus scrapes. No label carries personal data: regions, adapters, outcomes and error codes only,
never a vehicle, subject, signal value or position.

What is counted where:

* ``process``: every batch processed on this side of the seam (`onshore.pipeline.process.Processor`): records
  received, stored, dropped by reason; the batch's processing time and the time of its commit.
* ``refusal``: every refusal an adapter answered (a 4xx or 5xx with its error code: rate limits, validation,
  back-pressure), so an operator sees abuse and overload without reading logs.
* ``mqtt_message``: every message `onshore mqtt` took, by what it carries and whether it was processed or refused
  (a refusal is counted by ``refusal`` too); ``mqtt_unacked``: messages it holds unacknowledged now.
* ``in_flight``: batches being processed now (the depth of the in-process queue; a message-queue bus reports
  its own pending count through ``queue_depth``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from onshore.model import FrameResult, IngestResult

__all__ = ["CONTENT_TYPE", "Metrics"]

# Seconds: a batch commits in about a millisecond on a quiet SQLite, tens of milliseconds on a busy PostgreSQL.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters, gauges and histograms of one process, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_in = Counter(
            "onshore_records_received", "Records received in admitted batches", ["region"], registry=r
        )
        self.records_out = Counter("onshore_records_stored", "Records stored (new rows)", ["region"], registry=r)
        self.dropped = Counter(
            "onshore_records_dropped",
            "Records received and not stored, by reason (no_consent, duplicate, zone)",
            ["region", "reason"],
            registry=r,
        )
        self.batches = Counter(
            "onshore_batches",
            "Batches processed, by kind (records, frame) and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.refusals = Counter(
            "onshore_refusals", "Requests or messages refused, by status and error code", ["status", "code"], registry=r
        )
        self.process_seconds = Histogram(
            "onshore_process_seconds",
            "Time to classify, minimise, store and log one batch",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "onshore_commit_seconds",
            "Time of one batch's store step: routing, encryption and the database transaction",
            ["region"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight_batches = Gauge(
            "onshore_batches_in_flight", "Batches being processed in this process now", registry=r
        )
        self.mqtt_messages = Counter(
            "onshore_mqtt_messages",
            "MQTT messages taken, by what they carry (v, alerts_current, batch, ...) and outcome (processed, refused)",
            ["kind", "outcome"],
            registry=r,
        )
        self.mqtt_unacked = Gauge(
            "onshore_mqtt_unacknowledged", "MQTT messages held unacknowledged until they commit", registry=r
        )
        self.queue_depth = Gauge(
            "onshore_queue_depth", "Batches waiting on the bus for a worker (message-queue bus)", ["region"], registry=r
        )

    @contextlib.contextmanager
    def in_flight(self, kind: str) -> Iterator[None]:
        """Count a batch as in flight while it is processed; time it; count its outcome."""
        started = time.perf_counter()
        self.in_flight_batches.inc()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.in_flight_batches.dec()
            self.process_seconds.labels(kind).observe(time.perf_counter() - started)
            self.batches.labels(kind, outcome).inc()

    def records(self, result: IngestResult, commit_s: float) -> None:
        """A processed record batch: its counts and the time of its store step."""
        region = result.region
        self.records_in.labels(region).inc(result.received)
        self.records_out.labels(region).inc(result.accepted)
        for reason, n in (("no_consent", result.dropped_no_consent), ("duplicate", result.duplicate)):
            if n:
                self.dropped.labels(region, reason).inc(n)
        self.commit_seconds.labels(region).observe(commit_s)

    def frame(self, result: FrameResult) -> None:
        """A processed frame: one record in, stored or dropped with the reason the result gives."""
        region = result.region
        self.records_in.labels(region).inc()
        if result.stored:
            self.records_out.labels(region).inc()
        elif result.duplicate:
            self.dropped.labels(region, "duplicate").inc()
        elif result.dropped:
            self.dropped.labels(region, result.dropped).inc()

    def refusal(self, status: int, code: str) -> None:
        self.refusals.labels(str(status), code).inc()

    def mqtt_message(self, kind: str, outcome: str) -> None:
        self.mqtt_messages.labels(kind, outcome).inc()

    def render(self) -> bytes:
        """The text exposition format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
