"""The ingest service: admit a batch, then hand it over the ingest bus to be processed (classify → minimise →
store → ledger, `onshore.pipeline.process`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from onshore import clock
from onshore.config import IngestSettings
from onshore.errors import OnshoreError, PayloadTooLargeError
from onshore.ingest.batch import RecordBatch
from onshore.ingest.bus import Bus
from onshore.model import IngestResult, Vehicle
from onshore.pipeline.admit import WireRecord, admit, decode_body, records_from_python


class IngestService:
    """Admits authenticated vehicles' batches and submits them to the bus."""

    def __init__(self, limits: IngestSettings, bus: Bus) -> None:
        self.limits = limits
        self.bus = bus

    def ingest_body(self, vehicle: Vehicle, body: bytes, content_type: str | None) -> IngestResult:
        """Decode and ingest one HTTP/NDJSON body for ``vehicle``.

        Raises:
            InputError (PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError): the body is refused
                whole; nothing was stored.
            ResidencyError: no region may hold data of the vehicle's market.
        """
        return self.bus.submit(self.admit_body(vehicle, body, content_type))

    def admit_body(self, vehicle: Vehicle, body: bytes, content_type: str | None) -> RecordBatch:
        """Decode and admit one HTTP/NDJSON body for ``vehicle``, without processing it (a gateway publishes it).

        Raises:
            InputError: as `ingest_body`.
        """
        return admit(decode_body(body, content_type, self.limits), vehicle, self.limits, now_ms=clock.now_ms())

    def ingest_records(self, vehicle: Vehicle, records: list[Any], *, now_ms: int | None = None) -> IngestResult:
        """Ingest already-decoded records (dicts). All-or-nothing: invalid input raises before anything is stored.

        Raises:
            InputError (ValidationError, PayloadTooLargeError): the batch is refused whole.
            ResidencyError: no region may hold data of the vehicle's market.
        """
        return self._ingest(vehicle, records_from_python(records, self.limits), now_ms)

    def ingest_vehicles(
        self, batches: Sequence[tuple[Vehicle, list[WireRecord]]], *, now_ms: int | None = None
    ) -> list[IngestResult]:
        """Ingest decoded records of several vehicles (a gateway's request): one batch per vehicle, in order.

        Every batch is admitted (times, sizes, limits) before the first is processed, so input a request can be
        refused for stores nothing. Processing is per vehicle: a batch that classify refuses (a value of the wrong
        shape for its signal) stops the request after the batches before it were stored; the error says how many.
        Resending the whole request is then safe: records already stored count as duplicates.

        Raises:
            InputError (PayloadTooLargeError, ValidationError): a batch is refused at admission; nothing stored.
            OnshoreError: processing batch ``k`` failed; batches ``0..k-1`` were stored (said in the message).
        """
        now_ms = clock.now_ms() if now_ms is None else now_ms
        admitted = []
        for k, (vehicle, records) in enumerate(batches):
            if len(records) > self.limits.max_batch_records:
                raise PayloadTooLargeError(
                    f"vehicle batch {k} has {len(records)} records; the limit is {self.limits.max_batch_records} "
                    "(ingest.max_batch_records): split the request"
                )
            try:
                admitted.append(admit(records, vehicle, self.limits, now_ms=now_ms))
            except OnshoreError as exc:
                if len(batches) > 1:
                    exc.message = f"vehicle batch {k}: {exc.message}"
                    exc.args = (exc.message,)
                raise
        results: list[IngestResult] = []
        for batch in admitted:
            try:
                results.append(self.bus.submit(batch))
            except OnshoreError as exc:
                if results:
                    exc.message = (
                        f"vehicle batch {len(results)} of {len(admitted)} was refused: {exc.message} "
                        f"(the {len(results)} batches before it were stored; resending the request is safe, "
                        "stored records count as duplicates)"
                    )
                    exc.args = (exc.message,)
                raise
        return results

    def _ingest(self, vehicle: Vehicle, records: list[WireRecord], now_ms: int | None) -> IngestResult:
        now_ms = clock.now_ms() if now_ms is None else now_ms
        return self.bus.submit(admit(records, vehicle, self.limits, now_ms=now_ms))
