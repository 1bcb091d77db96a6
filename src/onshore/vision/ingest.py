"""Frame ingest: camera frames in, classified and anonymised frames stored in their own region.

`FrameService.ingest` admits one frame (`onshore.vision.admit`: metadata and the strict header checks, a 4xx
and nothing written for an invalid one) and submits it over the ingest bus. Behind the bus the frame goes
through the same stages as signal records (`onshore.pipeline.process`: classification by the pack's camera
rules, the sensitive-zone and consent gates, one record row and the collect and store events), calling
`onshore.vision.stages` for detection, anonymisation and the blob writes.

The service also reads frames back (the anonymised image for staff, the raw frame for officers, logged),
deletes a subject's blobs on erasure, and sweeps blobs no record refers to (retention, erasure, crashed commits).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select

from onshore import clock
from onshore.config import FrameSettings
from onshore.errors import BusyError, NotFoundError
from onshore.ingest.batch import FrameBatch
from onshore.ingest.bus import Bus, InProcessBus
from onshore.model import FrameResult, LifecycleEvent, Vehicle
from onshore.pipeline.classify import FRAME_SIGNAL
from onshore.pipeline.process import Processor
from onshore.pipeline.store import RegionRouter
from onshore.rules.loader import RuleBook
from onshore.storage.crypto import decrypt_blob
from onshore.storage.predicates import RecordFilter
from onshore.storage.records import find_record, group_counts, iter_records, select_records
from onshore.storage.region import Region
from onshore.storage.schema import frame_drops
from onshore.vision.admit import POSITION_HEADER, FrameMeta, admit_frame, parse_frame_meta
from onshore.vision.headers import JPEG, PNG
from onshore.vision.stages import VisionStages, blob_stem, frame_key, raw_key

if TYPE_CHECKING:
    from onshore.vision.frames import FrameProcessor

_FRAMES = RecordFilter(signals=(FRAME_SIGNAL,))

__all__ = [
    "FRAME_SIGNAL",
    "POSITION_HEADER",
    "FrameMeta",
    "FrameResult",
    "FrameService",
    "frame_key",
    "parse_frame_meta",
    "raw_key",
]

_SWEEP_GRACE_S = 3600  # blobs younger than this may belong to a frame still being committed


class FrameService:
    """Takes authenticated vehicles' camera frames over the ingest bus; reads, erases and sweeps their blobs.

    Args:
        bus: where admitted frames go; by default an in-process bus to a processor over ``router`` and ``stages``.
        stages: detection and blob writes; by default a pool of its own built from ``frames``.
    """

    def __init__(
        self,
        rulebook: RuleBook,
        router: RegionRouter,
        frames: FrameSettings,
        *,
        bus: Bus | None = None,
        stages: VisionStages | None = None,
    ) -> None:
        self.rulebook = rulebook
        self.settings = frames
        self.stages = stages or VisionStages(frames)
        self.limits = self.stages.limits
        self.bus = bus or InProcessBus(Processor(rulebook, router, frames=self.stages))
        self._slots = threading.BoundedSemaphore(frames.max_in_flight)

    @property
    def processor(self) -> FrameProcessor:
        """The detection pool, built on first use (loading models takes about a second)."""
        return self.stages.processor

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``frames.max_in_flight`` places for a frame upload, or refuse at once.

        Raises:
            BusyError (503): every place is taken; the client retries after ``Retry-After`` seconds.
        """
        if not self._slots.acquire(blocking=False):
            raise BusyError(
                f"{self.settings.max_in_flight} frames are already being processed (frames.max_in_flight); "
                "retry after the Retry-After seconds"
            )
        try:
            yield
        finally:
            self._slots.release()

    def close(self) -> None:
        self.stages.close()

    def ingest(self, vehicle: Vehicle, data: bytes, meta: FrameMeta, *, now_ms: int | None = None) -> FrameResult:
        """Admit one frame of ``vehicle`` and have it classified, anonymised and stored.

        Raises:
            ValidationError (422), PayloadTooLargeError (413), UnsupportedMediaTypeError (415): the frame or
                its metadata is invalid; nothing was stored.
            ResidencyError: no region may hold data of the vehicle's market.
        """
        return self.bus.submit(self.admit(vehicle, data, meta, now_ms=now_ms))

    def admit(self, vehicle: Vehicle, data: bytes, meta: FrameMeta, *, now_ms: int | None = None) -> FrameBatch:
        """Admit one frame of ``vehicle`` without processing it (a gateway publishes it).

        Raises:
            InputError: as `ingest`.
        """
        now_ms = clock.now_ms() if now_ms is None else now_ms
        return admit_frame(vehicle, data, meta, self.limits, now_ms=now_ms)

    # -- reading --------------------------------------------------------------------------------

    def _frame_row(self, region: Region, vehicle_ref: str, msg_id: str) -> dict[str, Any]:
        with region.store.read("frame lookup") as conn:
            row = find_record(conn, vehicle_ref, msg_id)
        if row is None or row.signal != FRAME_SIGNAL:
            raise NotFoundError(f"region {region.name} holds no frame with that vehicle and message id")
        opened = region.open_rows([row._asdict()])[0]
        if opened["value"] is None:
            raise NotFoundError(f"region {region.name}: that frame's subject was erased")
        return opened

    def frame(self, region: Region, vehicle_ref: str, msg_id: str) -> tuple[bytes, str, dict[str, Any]]:
        """The anonymised image of a stored frame, its media type and its record (categories, counts).

        Raises:
            NotFoundError: no such frame, or its subject was erased.
        """
        row = self._frame_row(region, vehicle_ref, msg_id)
        value = orjson.loads(row["value"])
        return region.blobs.get(frame_key(vehicle_ref, msg_id, value["media_type"])), value["media_type"], row

    def raw_frame(self, region: Region, vehicle_ref: str, msg_id: str, *, actor_role: str) -> tuple[bytes, str]:
        """The raw frame, decrypted, for an officer; the read is logged in the ledger (kind ``query``).

        Raises:
            NotFoundError: no such frame, no raw frame kept for it (dropped by policy or expired), or erased.
        """
        row = self._frame_row(region, vehicle_ref, msg_id)
        value = orjson.loads(row["value"])
        keys = region.subject_keys.keys_for([row["subject_ref"]], create=False)
        key = keys.get(row["subject_ref"])
        if key is None:
            raise NotFoundError(f"region {region.name}: that frame's subject was erased")
        try:
            sealed = region.restricted.get(raw_key(vehicle_ref, msg_id))
        except NotFoundError:
            raise NotFoundError(
                f"region {region.name} keeps no raw frame for that message (dropped by the pack's policy or expired)"
            ) from None
        data = decrypt_blob(key, region.name, vehicle_ref, msg_id, sealed)
        region.store.append_events(
            [
                LifecycleEvent(
                    kind="query",
                    region=region.name,
                    at_ms=clock.now_ms(),
                    actor_role=actor_role,
                    purpose=row["purpose"],
                    counts={"raw_frames": 1},
                )
            ]
        )
        return data, value["media_type"]

    def stats(self, region: Region) -> dict[str, Any]:
        """Frames of ``region``: stored (by category and camera rule) and dropped (by reason), for /v1/stats."""
        with region.store.read("frame stats") as conn:
            by = group_counts(conn, _FRAMES, ("categories", "rule_id"))
            drops = conn.execute(
                select(frame_drops.c.reason, func.sum(frame_drops.c.frames)).group_by(frame_drops.c.reason)
            ).all()
        by_category: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for categories, rule_id, count in by:
            for category in categories.split(","):
                by_category[category] = by_category.get(category, 0) + int(count)
            by_rule[rule_id] = by_rule.get(rule_id, 0) + int(count)
        return {
            "stored": sum(by_rule.values()),
            "by_category": by_category,
            "by_rule": by_rule,
            "dropped": {reason: int(total) for reason, total in drops},
        }

    # -- housekeeping ---------------------------------------------------------------------------

    def erase_subject(self, region: Region, subject_ref: str) -> int:
        """Delete the anonymised and raw blobs of every frame of ``subject_ref`` in ``region`` (erasure).

        Works from the records' plain columns (vehicle and message id), so it runs after the subject's key
        is destroyed and before the rows are purged. Returns the number of blobs deleted.
        """
        with region.store.read("frames of a subject") as conn:
            frames = [(r.vehicle_ref, r.msg_id) for r in select_records(conn, replace(_FRAMES, subject=subject_ref))]
        deleted = 0
        for vehicle_ref, msg_id in frames:
            for media_type in (JPEG, PNG):
                deleted += int(region.blobs.delete(frame_key(vehicle_ref, msg_id, media_type)))
            deleted += int(region.restricted.delete(raw_key(vehicle_ref, msg_id)))
        return deleted

    def sweep(self, region: Region, *, now_ms: int | None = None) -> dict[str, int]:
        """Delete frame blobs no record refers to (retention, erasure, crashed commits) and expired raw frames.

        Returns:
            counts: ``frames_removed``, ``raw_removed``, ``temporary_removed``.
        """
        now_s = (clock.now_ms() if now_ms is None else now_ms) / 1000
        pack = self.rulebook.for_jurisdiction(region.jurisdiction)
        raw_days = pack.pack.frames.raw.retention_days if pack.pack.frames is not None else 0
        with region.store.read("frame sweep") as conn:
            live = {blob_stem(r.vehicle_ref, r.msg_id) for chunk in iter_records(conn, _FRAMES) for r in chunk}
        counts = {"frames_removed": 0, "raw_removed": 0, "temporary_removed": 0}
        for store_, prefix, name in (
            (region.blobs, "frames/", "frames_removed"),
            (region.restricted, "raw/", "raw_removed"),
        ):
            for key, modified in list(store_.entries(prefix)):
                ident = key[len(prefix) :].rsplit(".", 1)[0]
                young = now_s - modified < _SWEEP_GRACE_S
                expired = prefix == "raw/" and now_s - modified > raw_days * 86_400
                if (ident not in live and not young) or expired:
                    counts[name] += int(store_.delete(key))
            counts["temporary_removed"] += store_.sweep_temporary(_SWEEP_GRACE_S)
        return counts
