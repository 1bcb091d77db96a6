"""The runtime: everything built from Settings once, shared by the API, the CLI and the demo."""

from __future__ import annotations

import contextlib
from typing import Any

from onshore.border.service import BorderService
from onshore.config import Settings
from onshore.errors import BusUnavailableError, StorageError
from onshore.ingest.bus import Bus, InProcessBus, QueueBus
from onshore.ledger.service import LedgerService
from onshore.ledger.store import MerkleLog
from onshore.metrics import Metrics
from onshore.pipeline.process import Processor
from onshore.pipeline.service import IngestService
from onshore.pipeline.store import RegionRouter
from onshore.registers.profile import sync_profile
from onshore.registers.service import RegisterService
from onshore.rights.consent import ConsentService
from onshore.rights.requests import SubjectRequests
from onshore.rights.retention import RetentionService
from onshore.rights.subjects import SubjectService
from onshore.rules.loader import RuleBook
from onshore.storage.region import Region, open_regions
from onshore.vehicles import VehicleRegistry
from onshore.vision.ingest import FrameService
from onshore.vision.stages import VisionStages


class Runtime:
    """Rule book, regions and services for one configuration.

    Args:
        create: bring the record stores to the head schema revision first (a new deployment: `onshore init`, the
            demo, tests, benches). Without it a store not at head raises ``SchemaVersionError`` naming
            `onshore db upgrade`.
    """

    def __init__(self, settings: Settings, *, create: bool = False) -> None:
        self.settings = settings
        self.rulebook = RuleBook.load(settings.rules.packs, enable_unconfirmed=settings.rules.enable_unconfirmed)
        for region in settings.regions.values():
            self.rulebook.for_jurisdiction(region.jurisdiction)  # every region needs a pack in force
        self.regions: dict[str, Region] = open_regions(settings, journal=MerkleLog, create=create)
        self.router = RegionRouter(self.regions)
        stages = VisionStages(settings.frames)
        self.metrics = Metrics()
        self.processor = Processor(self.rulebook, self.router, frames=stages, metrics=self.metrics)
        # Embedded mode: admit and process in this process, the bus a direct call between them. Distributed mode:
        # this process admits and publishes to NATS JetStream; `onshore worker` processes (onshore.worker).
        self.queue: QueueBus | None = None
        self.bus: Bus = InProcessBus(self.processor)
        if settings.bus.kind == "nats":
            from onshore.ingest.nats_bus import NatsBus

            self.queue = NatsBus(settings.bus)
            self.bus = self.queue
        self.ingest = IngestService(settings.ingest, self.bus)
        self.vehicles = VehicleRegistry(self.regions, gateways=(t.name for t in settings.tokens if t.role == "gateway"))
        self.consents = ConsentService(self.rulebook, self.regions)
        self.ledger = LedgerService(self.regions)
        self.subjects = SubjectService(self.regions, self.vehicles)
        self.frames = FrameService(self.rulebook, self.router, settings.frames, bus=self.bus, stages=stages)
        self.retention = RetentionService(self.rulebook, self.regions, blob_sweeper=self.frames.sweep)
        # the processor's profile as configured, recorded in each region's ledger when it changed
        sync_profile(self.regions, settings.processor)
        self.border = BorderService(
            self.rulebook,
            self.regions,
            base_dir=settings.base_dir,
            checkpoint_at=self._checkpoint_at,
            processor_status=settings.processor.statuses(),
        )
        self.requests = SubjectRequests(
            self.subjects,
            self.rulebook,
            blob_eraser=self.frames.erase_subject,
            transfers_of=self.border.transfers_of_subject,
        )
        self.registers = RegisterService(self.rulebook, self.regions, self.requests)

    def _checkpoint_at(self, region: str, size: int) -> tuple[str, str]:
        """The log's origin and its signed checkpoint note at ``size`` (what an export bundle carries)."""
        signed = self.ledger.checkpoint_at(region, size)
        return signed.origin, signed.note

    def health(self) -> dict[str, Any]:
        """Which dependency is down: each region's record store (``database``) and, distributed, NATS (``bus``)."""
        database: dict[str, str] = {}
        for name, region in self.regions.items():
            try:
                region.store.ping()
                database[name] = "ok"
            except StorageError:
                database[name] = "down"
        dependencies: dict[str, Any] = {"database": database}
        if self.queue is not None:
            dependencies["bus"] = self.queue.health()
        return dependencies

    def metrics_text(self) -> bytes:
        """The metrics in Prometheus' text format, with each region's queue depth read from the bus now (a bus that
        cannot be reached leaves the gauge absent for that scrape: health says it is down)."""
        if self.queue is not None:
            for name in self.regions:
                try:
                    depth = self.queue.depth(name)
                except BusUnavailableError:
                    with contextlib.suppress(KeyError):  # never set (older prometheus_client raises)
                        self.metrics.queue_depth.remove(name)
                    continue
                self.metrics.queue_depth.labels(name).set(depth["pending"] + depth["in_flight"])
        return self.metrics.render()

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()
        self.frames.close()
        for region in self.regions.values():
            region.close()
