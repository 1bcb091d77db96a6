"""The ingest bus: how an admitted batch reaches the process stages.

Admit (the HTTP routes, the CLI, MQTT and fleet-telemetry adapters to come) ends with ``bus.submit(batch)``;
what is behind the bus classifies, minimises, stores and logs (`onshore.pipeline.process.Processor`). A bus
answers with the outcome, `IngestResult` for a `RecordBatch` and `FrameResult` for a `FrameBatch`, or raises
the error processing raised (an `OnshoreError`, whose status and message the API answers with).

`InProcessBus` is the embedded mode: a direct call, nothing queued, the answer in the response. A `QueueBus`
(`onshore.ingest.nats_bus.NatsBus`: NATS JetStream, one stream per region, the batch's ``encode()`` bytes as the
message, a worker that decodes, processes and acknowledges after the commit, `onshore.worker`) also implements
``submit`` (publish, then wait for the answer), and besides ``enqueue``: publish and return a `Receipt` at once,
whose answer is fetched later by its id (``GET /v1/receipts/{id}``: the gateway's 202).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from onshore.ingest.batch import Batch, FrameBatch, RecordBatch, decode
from onshore.model import FrameResult, IngestResult
from onshore.pipeline.process import Processor


class Bus(Protocol):
    """Carries admitted batches to the process stages and brings back their outcome."""

    @overload
    def submit(self, batch: RecordBatch) -> IngestResult: ...
    @overload
    def submit(self, batch: FrameBatch) -> FrameResult: ...
    def submit(self, batch: Batch) -> IngestResult | FrameResult:
        """Process ``batch`` (here or elsewhere) and return its outcome.

        Raises:
            OnshoreError: what processing raised (ValidationError, ResidencyError, StorageError, ...).
        """
        ...


@dataclass(frozen=True)
class Receipt:
    """What a gateway answers (202) for a batch it published: the id under which its outcome can be fetched."""

    batch_id: str
    region: str

    @property
    def location(self) -> str:
        return f"/v1/receipts/{self.batch_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"receipt": self.batch_id, "status": "pending", "region": self.region, "location": self.location}


class QueueBus(Bus, Protocol):
    """A bus over a message queue: batches are processed elsewhere, later; their outcome is kept as a receipt."""

    def start(self, regions: list[str]) -> None:
        """Connect and set up every region's stream and buckets now (a gateway's start).

        Raises:
            BusUnavailableError: the queue cannot be reached.
        """
        ...

    def enqueue(self, batch: Batch) -> Receipt:
        """Publish ``batch`` durably and return its receipt; nothing is processed yet.

        Raises:
            BusUnavailableError (503): the queue did not confirm the publish; the caller acknowledges nothing.
        """
        ...

    def receipt(self, region: str, receipt_id: str, owner: str) -> dict[str, Any]:
        """The receipt ``receipt_id`` of ``owner`` (a vehicle's pseudonym): ``{"receipt", "status", "region"}`` and,
        when ``status`` is ``done``, ``result`` (the answer embedded mode gives), when ``failed``, ``error`` (the
        error shape of the API) and ``http_status``.

        Raises:
            NotFoundError: no such receipt of ``owner`` (never issued, another vehicle's, or expired).
        """
        ...

    def depth(self, region: str) -> dict[str, int]:
        """The region's backlog: ``messages`` in the stream, and its consumer's ``pending``, ``in_flight`` and
        ``redelivered`` counts.

        Raises:
            BusUnavailableError: the queue cannot be reached.
        """
        ...

    def health(self) -> Literal["ok", "down"]:
        """Whether the queue is reachable now."""
        ...

    def close(self) -> None: ...


class InProcessBus:
    """Hands each batch straight to a `Processor` in this process.

    Args:
        serialise: encode and decode every batch on the way, as a queue would: proves in tests that what crosses
            the seam is the batch and nothing else (off in production, where it would only cost time).
    """

    def __init__(self, processor: Processor, *, serialise: bool = False) -> None:
        self.processor = processor
        self.serialise = serialise

    @overload
    def submit(self, batch: RecordBatch) -> IngestResult: ...
    @overload
    def submit(self, batch: FrameBatch) -> FrameResult: ...
    def submit(self, batch: Batch) -> IngestResult | FrameResult:
        """Process ``batch`` now, in the caller's thread; raises what processing raises."""
        if self.serialise:
            batch = decode(batch.encode())
        return self.processor.process(batch)
