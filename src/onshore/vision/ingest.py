"""Frame ingest: camera frames in, classified and anonymised frames stored in their own region.

One frame at a time, in this order, so nothing is stored that should not be and nothing is half-written:

1. the upload and its metadata are validated (size, format and pixel limits before decoding; camera id,
   message id, time, position, purpose) — an invalid frame is refused with a 4xx and nothing is written;
2. a resend of a frame already stored is answered as a duplicate without any work;
3. the pack's camera rule classifies it (cabin: sensitive personal, biometric; external: important and
   personal when faces or plates are found, else what the rule says);
4. a frame taken inside a sensitive zone is dropped when the pack says so (counted and logged, not stored),
   and so is one shot in hard conditions (motion blur, night noise) where the pack says ``hard_conditions:
   drop``, because detection recall there is measured below the law's floor;
5. collection needs the subject's consent for the purpose unless the rule exempts it (Art. 8: out-of-vehicle
   frames taken for driving safety and anonymised);
6. faces and plates are found and hidden; the anonymised frame goes to the region's blob store under a key
   made of the vehicle's pseudonym and a digest of the message id; the raw frame is dropped, or, where the
   pack keeps raw frames, sealed under the subject's data key in the region's restricted store;
7. one record row (signal ``CameraFrame``: camera, size, counts of faces and plates — never crops, and not the
   blob key, which holds the region's own vehicle pseudonym and so must not travel in exports)
   and the collect and store events are committed in one transaction.

A crash between 6 and 7 leaves an unreferenced blob and no acknowledgement; the vehicle resends, the same
key is rewritten with the same bytes, and `FrameService.sweep` removes blobs no record refers to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select

from onshore.config import FrameSettings, IngestSettings
from onshore.errors import BusyError, NotFoundError, ValidationError
from onshore.model import LifecycleEvent, RecordColumns, StoredRows, Vehicle
from onshore.pipeline.admit import MIN_TS_MS, MSG_ID_PATTERN, PURPOSE_PATTERN, parse_ts
from onshore.pipeline.minimize import consent_allows
from onshore.pipeline.store import RegionRouter, store
from onshore.rights.bindings import SubjectResolver
from onshore.rules.loader import LoadedPack, RuleBook
from onshore.rules.schema import CameraRule, FramePolicy, Placement
from onshore.storage.crypto import decrypt_blob, encrypt_blob
from onshore.storage.predicates import RecordFilter
from onshore.storage.records import find_record, group_counts, iter_records, select_records
from onshore.storage.region import Region
from onshore.storage.schema import frame_drops
from onshore.storage.writes import upsert_increment
from onshore.vision.anonymize import AnonymizationSettings
from onshore.vision.frames import JPEG, PNG, AnonymizedFrame, FrameLimits, FrameProcessor, check_frame

FRAME_SIGNAL = "CameraFrame"
_CAMERA = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
POSITION_HEADER = "X-Onshore-Position"
_POSITION = re.compile(r"\s*([-+]?[0-9]{1,3}(?:\.[0-9]{1,15})?)\s*,\s*([-+]?[0-9]{1,3}(?:\.[0-9]{1,15})?)\s*")
_DIGITS = re.compile(r"[0-9]{1,19}")
_FRAMES = RecordFilter(signals=(FRAME_SIGNAL,))
_SWEEP_GRACE_S = 3600  # blobs younger than this may belong to a frame still being committed


@dataclass(frozen=True)
class FrameMeta:
    """What a vehicle says about one frame (validated by `parse_frame_meta`)."""

    msg_id: str
    camera: str
    ts_ms: int
    latitude: float | None = None
    longitude: float | None = None
    purpose: str | None = None


@dataclass
class FrameResult:
    """What happened to one frame, as returned to the vehicle (no personal data)."""

    region: str
    msg_id: str
    stored: bool
    duplicate: bool = False
    conditions: list[str] = field(default_factory=list)
    dropped: str | None = None  # sensitive_zone | no_consent | hard_conditions
    rule_id: str | None = None
    categories: list[str] = field(default_factory=list)
    faces: int = 0
    plates: int = 0
    raw_kept: bool = False
    ledger_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _bad(field_name: str, reason: str) -> ValidationError:
    return ValidationError(
        f"{field_name}: {reason}. Nothing was stored.", details=[{"field": field_name, "reason": reason}]
    )


def parse_frame_meta(
    params: dict[str, str], limits: IngestSettings, *, now_ms: int, position: str | None = None
) -> FrameMeta:
    """Validate a frame's metadata: the query parameters of ``POST /v1/frames`` and its position header.

    ``position`` is the ``X-Onshore-Position: <lat>,<lon>`` header (decimal degrees), never a query parameter:
    query strings end up in access logs and proxies' logs, and a position is personal data.

    Raises:
        ValidationError: a field is missing or malformed; the message and ``details`` name it.
    """
    for name in ("lat", "lon"):
        if name in params:
            raise _bad(name, f"send the position in the {POSITION_HEADER} header as <lat>,<lon>, not in the query")
    unknown = sorted(set(params) - {"msg_id", "camera", "ts", "purpose"})
    if unknown:
        raise _bad(unknown[0], "unknown field; the vehicle and its market come from the token, never the request")
    for name in ("msg_id", "camera", "ts"):
        if not params.get(name):
            raise _bad(name, "is required")
    msg_id = params["msg_id"]
    if len(msg_id) > limits.max_msg_id_chars or not re.fullmatch(MSG_ID_PATTERN, msg_id):
        raise _bad("msg_id", f"must be 1-{limits.max_msg_id_chars} characters of A-Z a-z 0-9 . _ : -")
    camera = params["camera"]
    if not re.fullmatch(_CAMERA, camera):
        raise _bad("camera", "must be 1-64 characters of a-z 0-9 _ . - (e.g. front, rear, cabin)")
    raw_ts = params["ts"]
    if len(raw_ts) > 40:
        raise _bad("ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
    # ASCII digits only: str.isdigit() also takes superscripts and other scripts' digits, which int() refuses
    ts_ms = parse_ts(int(raw_ts) if _DIGITS.fullmatch(raw_ts) else raw_ts)
    if ts_ms is None:
        raise _bad("ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
    if ts_ms < MIN_TS_MS or ts_ms > now_ms + limits.max_clock_skew_s * 1000:
        raise _bad("ts", "is outside the accepted range (2000-01-01 .. now + ingest.max_clock_skew_s)")
    latitude, longitude = _position(position)
    purpose = params.get("purpose")
    if purpose is not None and not re.fullmatch(PURPOSE_PATTERN, purpose):
        raise _bad("purpose", "must be a lower_snake_case purpose id")
    return FrameMeta(msg_id, camera, ts_ms, latitude, longitude, purpose)


def _position(header: str | None) -> tuple[float | None, float | None]:
    """``(lat, lon)`` from the position header, or ``(None, None)`` without one; the value is never echoed."""
    if header is None:
        return None, None
    match = _POSITION.fullmatch(header)
    if match is None:
        raise _bad(POSITION_HEADER, "must be <lat>,<lon> in decimal degrees, e.g. 31.2304,121.4737")
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise _bad(POSITION_HEADER, "lat must lie in -90..90 and lon in -180..180")
    return latitude, longitude


def _blob_stem(vehicle_ref: str, msg_id: str) -> str:
    """``<vehicle_ref>/<digest of msg_id>``: the part every blob key of one frame shares (never the msg_id)."""
    return f"{vehicle_ref}/{hashlib.sha256(msg_id.encode()).hexdigest()[:40]}"


def frame_key(vehicle_ref: str, msg_id: str, media_type: str) -> str:
    """Blob key of a frame's anonymised image: pseudonym and digest only, never the message id itself."""
    return f"frames/{_blob_stem(vehicle_ref, msg_id)}.{'jpg' if media_type == JPEG else 'png'}"


def raw_key(vehicle_ref: str, msg_id: str) -> str:
    """Key of a raw frame in the restricted store (sealed bytes)."""
    return f"raw/{_blob_stem(vehicle_ref, msg_id)}.sealed"


def _anonymization(policy: FramePolicy) -> AnonymizationSettings:
    return AnonymizationSettings(method=policy.anonymise.method, padding=dict(policy.anonymise.padding))


class FrameService:
    """Takes authenticated vehicles' camera frames through classification, anonymisation and storage."""

    def __init__(self, rulebook: RuleBook, router: RegionRouter, frames: FrameSettings):
        self.rulebook = rulebook
        self.router = router
        self.settings = frames
        self.limits = FrameLimits(
            max_bytes=frames.max_bytes, max_pixels=frames.max_pixels, max_pixels_per_byte=frames.max_pixels_per_byte
        )
        self._processor: FrameProcessor | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(frames.max_in_flight)

    @property
    def processor(self) -> FrameProcessor:
        """The detection pool, built on first use (loading models takes about a second)."""
        with self._lock:
            if self._processor is None:
                self._processor = FrameProcessor(
                    detector=self.settings.detector,
                    limits=self.limits,
                    workers=self.settings.workers or None,
                    jpeg_quality=self.settings.jpeg_quality,
                )
            return self._processor

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
        with self._lock:
            if self._processor is not None:
                self._processor.close()
                self._processor = None

    # -- ingest ---------------------------------------------------------------------------------

    def _policy(self, pack: LoadedPack) -> FramePolicy:
        if pack.pack.frames is None:
            raise ValidationError(
                f"the rule pack in force for {pack.jurisdiction} ({pack.pack.pack}) has no `frames` section; "
                "camera frames of this market cannot be classified, so none are accepted"
            )
        return pack.pack.frames

    def _camera_rule(self, pack: LoadedPack, camera: str) -> CameraRule:
        rule = pack.camera_rule(camera)
        if rule is None:
            raise _bad("camera", f"no camera rule of pack {pack.pack.pack} matches this camera id")
        return rule

    def ingest(self, vehicle: Vehicle, data: bytes, meta: FrameMeta, *, now_ms: int | None = None) -> FrameResult:
        """Classify, anonymise and store one frame of ``vehicle``.

        Raises:
            ValidationError (422), PayloadTooLargeError (413), UnsupportedMediaTypeError (415): the frame or
                its metadata is invalid; nothing was stored.
            ResidencyError: no region may hold data of the vehicle's market.
        """
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        media_type, _width, _height = check_frame(data, self.limits)
        pack = self.rulebook.for_jurisdiction(vehicle.market)
        region = self.router.region_for(vehicle.market)
        policy = self._policy(pack)
        rule = self._camera_rule(pack, meta.camera)
        purpose = meta.purpose or rule.purposes[0]
        if purpose not in rule.purposes:
            raise _bad("purpose", f"frames of rule {rule.id} may be collected for: {', '.join(rule.purposes)}")
        result = FrameResult(region=region.name, msg_id=meta.msg_id, stored=False, rule_id=rule.id)
        if self._already_stored(region, vehicle.ref, meta.msg_id):
            result.duplicate = True
            return result
        zone = None
        extra_categories: list[str] = []
        extra_tags: list[str] = []
        if meta.latitude is not None and meta.longitude is not None and pack.zones.zones:
            zone = pack.zones.hits([meta.longitude], [meta.latitude])[0]
        if zone is not None:
            if policy.in_sensitive_zone == "drop":
                return self._dropped(region, result, purpose, now_ms, "sensitive_zone")
            zone_rule = pack.zone_rule(zone)
            extra_categories = [c.value for c in zone_rule.categories]
            extra_tags = list(zone_rule.tags)
        bindings, consents = region.subjects.vehicle_context(vehicle.ref, now_ms)
        subject = SubjectResolver(bindings, fallback=vehicle.ref).resolve([meta.ts_ms], [None])[0]
        have = consents.get(subject, {}).get(purpose)
        # A cabin frame's categories are known before detection: no detector pass on a frame not to be collected.
        cabin_refused = rule.placement is Placement.CABIN and not consent_allows(
            pack, [c.value for c in rule.categories], have
        )
        if cabin_refused and not rule.consent_exempt:
            return self._dropped(region, result, purpose, now_ms, "no_consent")
        # The detection floor is a criterion for out-of-vehicle images; cabin frames are not dropped for it.
        drop_hard = policy.hard_conditions == "drop" and rule.placement is Placement.EXTERNAL
        frame = self.processor.submit(data, "frame", _anonymization(policy), stop_on_hard_conditions=drop_hard).result()
        result.conditions = list(frame.conditions)
        if frame.conditions and drop_hard:
            return self._dropped(region, result, purpose, now_ms, "hard_conditions")
        found = frame.faces + frame.plates > 0
        categories = [
            c.value
            for c in (
                rule.categories
                if found or rule.placement is Placement.CABIN or rule.categories_when_clear is None
                else rule.categories_when_clear
            )
        ]
        categories = list(dict.fromkeys([*categories, *extra_categories]))
        if "general" in categories and len(categories) > 1:
            categories.remove("general")
        tags = list(dict.fromkeys([*rule.tags, *extra_tags]))
        if not rule.consent_exempt and not consent_allows(pack, categories, have):
            return self._dropped(region, result, purpose, now_ms, "no_consent")
        result.categories = categories
        result.faces, result.plates = frame.faces, frame.plates
        region.blobs.put(frame_key(vehicle.ref, meta.msg_id, media_type), frame.image)
        if policy.raw.keep:
            data_key = region.subject_keys.keys_for([subject], create=True)[subject]
            region.restricted.put(
                raw_key(vehicle.ref, meta.msg_id), encrypt_blob(data_key, region.name, vehicle.ref, meta.msg_id, data)
            )
            result.raw_kept = True
        return self._commit(
            region, vehicle, meta, rule, frame, categories, tags, purpose, zone, subject, result, now_ms
        )

    def _commit(
        self,
        region: Region,
        vehicle: Vehicle,
        meta: FrameMeta,
        rule: CameraRule,
        frame: AnonymizedFrame,
        categories: list[str],
        tags: list[str],
        purpose: str,
        zone: str | None,
        subject: str,
        result: FrameResult,
        now_ms: int,
    ) -> FrameResult:
        value = {
            "camera": meta.camera,
            "placement": rule.placement.value,
            "frame": True,  # the image is a blob, found from vehicle and message id, never named here
            "anonymised": True,
            "media_type": frame.media_type,
            "width": frame.width,
            "height": frame.height,
            "faces": frame.faces,
            "plates": frame.plates,
            "conditions": list(frame.conditions),
        }
        row = RecordColumns(
            vehicle_ref=[vehicle.ref],
            msg_id=[meta.msg_id],
            ts_ms=[meta.ts_ms],
            signal=[FRAME_SIGNAL],
            value=[orjson.dumps(value).decode()],
            categories=[",".join(categories)],
            tags=[",".join(tags)],
            purpose=[purpose],
            rule_id=[rule.id],
            origin=[vehicle.market],
            zone=[zone],
            received_ms=[now_ms],
            subject_ref=[subject],
        )
        by_category = {c: 1 for c in categories}
        stored = StoredRows(
            origin=vehicle.market,
            vehicle=vehicle,
            received_ms=now_ms,
            records=row,
            dropped_no_consent=0,
            dropped_by_purpose={},
            by_category=by_category,
            zone_hits=int(zone is not None),
            duplicates_in_batch=0,
            unclassified_signals=[],
        )
        events = [
            LifecycleEvent(
                kind="collect",
                region=region.name,
                at_ms=now_ms,
                actor_role="vehicle",
                purpose=purpose,
                counts={
                    "frames_received": 1,
                    "faces": frame.faces,
                    "plates": frame.plates,
                    "raw_kept": int(result.raw_kept),
                    "zone_hits": int(zone is not None),
                },
            ),
            LifecycleEvent(kind="store", region=region.name, at_ms=now_ms, actor_role="vehicle", purpose=purpose),
        ]
        _region, committed = store(stored, events, self.router)
        result.stored = committed.accepted == 1
        result.duplicate = committed.duplicate == 1
        result.ledger_index = committed.ledger_index
        return result

    def _dropped(self, region: Region, result: FrameResult, purpose: str, now_ms: int, reason: str) -> FrameResult:
        event = LifecycleEvent(
            kind="collect",
            region=region.name,
            at_ms=now_ms,
            actor_role="vehicle",
            purpose=purpose,
            counts={"frames_received": 1, f"frames_dropped_{reason}": 1},
        )
        day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date().isoformat()
        with region.store.transaction("frame drop") as conn:
            upsert_increment(conn, frame_drops, {"day": day, "reason": reason}, {"frames": 1})
            result.ledger_index = region.store.journal.append(conn, [event.to_bytes()])
        result.dropped = reason
        return result

    @staticmethod
    def _already_stored(region: Region, vehicle_ref: str, msg_id: str) -> bool:
        with region.store.read("frame lookup") as conn:
            return find_record(conn, vehicle_ref, msg_id) is not None

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
                    at_ms=int(time.time() * 1000),
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
            frames = select_records(conn, dataclasses.replace(_FRAMES, subject=subject_ref))
        deleted = 0
        for vehicle_ref, msg_id in ((r.vehicle_ref, r.msg_id) for r in frames):
            for media_type in (JPEG, PNG):
                deleted += int(region.blobs.delete(frame_key(vehicle_ref, msg_id, media_type)))
            deleted += int(region.restricted.delete(raw_key(vehicle_ref, msg_id)))
        return deleted

    def sweep(self, region: Region, *, now_ms: int | None = None) -> dict[str, int]:
        """Delete frame blobs no record refers to (retention, erasure, crashed commits) and expired raw frames.

        Returns:
            counts: ``frames_removed``, ``raw_removed``, ``temporary_removed``.
        """
        now_s = (int(time.time() * 1000) if now_ms is None else now_ms) / 1000
        pack = self.rulebook.for_jurisdiction(region.jurisdiction)
        raw_days = pack.pack.frames.raw.retention_days if pack.pack.frames is not None else 0
        with region.store.read("frame sweep") as conn:
            live = {_blob_stem(r.vehicle_ref, r.msg_id) for chunk in iter_records(conn, _FRAMES) for r in chunk}
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
