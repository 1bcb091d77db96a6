"""The ingest service: admit a batch, then hand it over the ingest bus to be processed (classify → minimise →
store → ledger, `onshore.pipeline.process`)."""

from __future__ import annotations

from typing import Any

from onshore import clock
from onshore.config import IngestSettings
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

    def _ingest(self, vehicle: Vehicle, records: list[WireRecord], now_ms: int | None) -> IngestResult:
        now_ms = clock.now_ms() if now_ms is None else now_ms
        return self.bus.submit(admit(records, vehicle, self.limits, now_ms=now_ms))
