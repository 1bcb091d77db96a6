"""The ingest bus: how an admitted batch reaches the process stages.

Admit (the HTTP routes, the CLI, MQTT and fleet-telemetry adapters to come) ends with ``bus.submit(batch)``;
what is behind the bus classifies, minimises, stores and logs (`onshore.pipeline.process.Processor`). A bus
answers with the outcome, `IngestResult` for a `RecordBatch` and `FrameResult` for a `FrameBatch`, or raises
the error processing raised (an `OnshoreError`, whose status and message the API answers with).

`InProcessBus` is the embedded mode: a direct call, nothing queued, today's answers. A message-queue bus
(NATS JetStream: one stream per region, the batch's ``encode()`` bytes as the message, a worker that decodes,
processes, and acknowledges after the commit) implements the same protocol.
"""

from __future__ import annotations

from typing import Protocol, overload

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
