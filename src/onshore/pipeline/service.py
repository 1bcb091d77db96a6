"""The ingest service: admit → classify → minimise → store → ledger, one batch at a time."""

from __future__ import annotations

import time
from typing import Any

from onshore.config import IngestSettings
from onshore.model import IngestResult, LifecycleEvent, Vehicle
from onshore.pipeline.admit import WireRecord, admit, decode_body, records_from_python
from onshore.pipeline.classify import classify
from onshore.pipeline.minimize import minimize
from onshore.pipeline.store import RegionRouter, store
from onshore.rights.bindings import SubjectResolver
from onshore.rules.loader import RuleBook


class IngestService:
    """Runs the pipeline stages for authenticated vehicles' batches."""

    def __init__(self, rulebook: RuleBook, router: RegionRouter, limits: IngestSettings) -> None:
        self.rulebook = rulebook
        self.router = router
        self.limits = limits
        # Personal values are encrypted under their subject's key; only benchmarks switch this off.
        self.encrypt = True

    def ingest_body(self, vehicle: Vehicle, body: bytes, content_type: str | None) -> IngestResult:
        """Decode and ingest one HTTP/NDJSON body for ``vehicle``."""
        return self._ingest(vehicle, decode_body(body, content_type, self.limits), None)

    def ingest_records(self, vehicle: Vehicle, records: list[Any], *, now_ms: int | None = None) -> IngestResult:
        """Ingest already-decoded records (dicts). All-or-nothing: invalid input raises before anything is stored.

        Raises:
            InputError (ValidationError, PayloadTooLargeError): the batch is refused whole.
            ResidencyError: no region may hold data of the vehicle's market.
        """
        return self._ingest(vehicle, records_from_python(records, self.limits), now_ms)

    def _ingest(self, vehicle: Vehicle, records: list[WireRecord], now_ms: int | None) -> IngestResult:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        batch = admit(records, vehicle, self.limits, now_ms=now_ms)
        pack = self.rulebook.for_jurisdiction(vehicle.market)
        region = self.router.region_for(vehicle.market)
        classified = classify(batch, pack)
        bindings, consents = region.subjects.vehicle_context(vehicle.ref, now_ms)
        resolver = SubjectResolver(bindings, fallback=vehicle.ref)
        subjects = resolver.resolve(batch.ts_ms, batch.profiles)
        minimised = minimize(classified, pack, subjects, consents)
        events = [
            LifecycleEvent(
                kind="collect",
                region=region.name,
                at_ms=now_ms,
                actor_role="vehicle",
                counts={
                    "received": len(records),
                    "admitted": len(batch),
                    "duplicate_in_batch": batch.duplicates_in_batch,
                    "dropped_no_consent": minimised.dropped_no_consent,
                    "zone_hits": minimised.zone_hits,
                    "unclassified_signals": len(minimised.unclassified_signals),
                },
            ),
            LifecycleEvent(kind="store", region=region.name, at_ms=now_ms, actor_role="vehicle"),
        ]
        region, result = store(minimised, events, self.router, encrypt=self.encrypt)
        return IngestResult(
            region=region.name,
            received=len(records),
            accepted=result.accepted,
            duplicate=batch.duplicates_in_batch + result.duplicate,
            dropped_no_consent=minimised.dropped_no_consent,
            by_category=result.by_category,
            zone_hits=minimised.zone_hits,
            unclassified_signals=minimised.unclassified_signals,
            ledger_index=result.ledger_index,
        )
