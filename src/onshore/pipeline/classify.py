"""Classify: each record's categories and tags under the law of its origin, and its zone.

The origin is the authenticated vehicle's market. Values are checked against the shape the pack
declares for the signal; a position inside a sensitive zone adds the zone rule's categories (Art. 3(1)).
Camera frames are classified here too, by the pack's ``frames:`` section: the camera rule and the zone are
known on arrival (`classify_frame_source`), the categories once detection has said whether faces or plates were
found (`classify_frame`, which makes the frame a one-record batch for the minimise stage).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from onshore.errors import ValidationError
from onshore.model import ClassifiedBatch, ResolvedRule, SignalBatch
from onshore.rules.loader import LoadedPack
from onshore.rules.schema import CameraRule, Category, FramePolicy, Placement

if TYPE_CHECKING:
    from onshore.ingest.batch import FrameBatch, FrameMeta
    from onshore.vision.frames import AnonymizedFrame

FRAME_SIGNAL = "CameraFrame"  # the signal of a frame's record row

# fleet-telemetry firmware may send a location as "(37.412374 N, 122.145867 W)"
_LOCATION_TEXT = re.compile(r"^\(?\s*(\d+(?:\.\d+)?)\s*([NS])\s*,\s*(\d+(?:\.\d+)?)\s*([EW])\s*\)?$")
_TIME_TEXT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d):([0-5]\d)$")


class _BadValue(Exception):
    pass


def _number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise _BadValue("expected a number, got a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _BadValue("expected a finite number")
        return value
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            raise _BadValue("expected a number") from None
        if parsed != parsed or parsed in (float("inf"), float("-inf")):
            raise _BadValue("expected a finite number")
        return parsed
    raise _BadValue(f"expected a number, got {type(value).__name__}")


def _location(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        m = _LOCATION_TEXT.match(value.strip())
        if not m:
            raise _BadValue('expected {"latitude","longitude"} or "(lat N, lon E)"')
        lat = float(m.group(1)) * (1 if m.group(2) == "N" else -1)
        lon = float(m.group(3)) * (1 if m.group(4) == "E" else -1)
    elif isinstance(value, dict):
        if set(value) != {"latitude", "longitude"}:
            raise _BadValue('expected exactly the keys "latitude" and "longitude"')
        lat = _number(value["latitude"])
        lon = _number(value["longitude"])
        if isinstance(value["latitude"], str) or isinstance(value["longitude"], str):
            raise _BadValue("latitude and longitude must be numbers")
    else:
        raise _BadValue(f'expected {{"latitude","longitude"}}, got {type(value).__name__}')
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise _BadValue("latitude must be in [-90, 90] and longitude in [-180, 180]")
    return {"latitude": float(lat), "longitude": float(lon)}


def normalise_value(kind: str, value: Any) -> Any:
    """Check ``value`` against the pack's value kind and return its canonical form.

    ``None`` is always accepted (fleet-telemetry sends ``invalid`` as null).
    """
    if value is None or kind == "any":
        return value
    if kind == "number":
        return _number(value)
    if kind == "location" and type(value) is dict and len(value) == 2:
        lat = value.get("latitude")
        lon = value.get("longitude")
        numeric = (type(lat) is float or type(lat) is int) and (type(lon) is float or type(lon) is int)
        if numeric and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:  # type: ignore[operator]
            return value
    if kind == "integer":
        number = _number(value)
        if float(number) != int(number):
            raise _BadValue("expected an integer")
        return int(number)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _BadValue(f"expected a boolean, got {type(value).__name__}")
    if kind == "string":
        if isinstance(value, str):
            return value
        raise _BadValue(f"expected a string, got {type(value).__name__}")
    if kind == "enum":
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise _BadValue(f"expected an enum name or code, got {type(value).__name__}")
    if kind == "location":
        return _location(value)
    if kind == "object":
        if isinstance(value, dict):
            return value
        raise _BadValue(f"expected a JSON object, got {type(value).__name__}")
    if kind == "time":
        if isinstance(value, str) and _TIME_TEXT.match(value):
            return value
        if isinstance(value, dict) and set(value) <= {"hour", "minute", "second"}:
            return value
        raise _BadValue('expected "HH:MM:SS" or {"hour","minute","second"}')
    return value


def classify(batch: SignalBatch, pack: LoadedPack) -> ClassifiedBatch:
    """Classify every record of ``batch`` under ``pack`` (the pack of the vehicle's market).

    Raises:
        ValidationError: a value does not have the shape its signal needs, or a record names a
            purpose its signal may not be collected for. Nothing has been stored.
    """
    resolve = pack.resolve
    declared_purposes = {p.id for p in pack.pack.purposes}
    n = len(batch)
    rules = [resolve(s) for s in batch.signals]
    values: list[Any] = list(batch.values)
    purposes: list[str] = [""] * n
    reasons: list[dict[str, Any]] = []
    loc_index: list[int] = []
    in_purposes = batch.purposes
    for i in range(n):
        rule = rules[i]
        kind = rule.value_kind
        value = values[i]
        if value is not None and kind != "any":
            vtype = type(value)
            # fast path: a number that is already a number needs no normalising
            if not (kind == "number" and (vtype is float or vtype is int)):
                try:
                    values[i] = value = normalise_value(kind, value)
                except _BadValue as exc:
                    reasons.append({"index": i, "field": "value", "reason": f"signal {batch.signals[i]}: {exc}"})
                    continue
                if kind == "location":
                    loc_index.append(i)
        wanted = in_purposes[i]
        if wanted is None:
            purposes[i] = rule.purposes[0]
        elif wanted in rule.purposes or (not rule.known and wanted in declared_purposes):
            purposes[i] = wanted
        else:
            reasons.append(
                {
                    "index": i,
                    "field": "purpose",
                    "reason": f"signal {batch.signals[i]} may be collected for {list(rule.purposes)} "
                    f"under rule {rule.rule_id}, not {wanted!r}",
                }
            )
    if reasons:
        raise ValidationError(
            f"{len(reasons)} invalid value(s); first: record {reasons[0]['index']}: {reasons[0]['reason']}. "
            "Nothing from this batch was stored.",
            details=reasons[:50],
        )
    categories = [r.categories for r in rules]
    tags = [r.tags for r in rules]
    zones: list[str | None] = [None] * n
    if loc_index and pack.zones.zones:
        hits = pack.zones.hits([values[i]["longitude"] for i in loc_index], [values[i]["latitude"] for i in loc_index])
        for i, zone_id in zip(loc_index, hits, strict=True):
            if zone_id is None:
                continue
            zones[i] = zone_id
            zone_rule = pack.zone_rule(zone_id)
            categories[i], tags[i] = _merged(
                categories[i], (c.value for c in zone_rule.categories), tags[i], zone_rule.tags
            )
    unclassified = sorted({batch.signals[i] for i in range(n) if not rules[i].known})
    return ClassifiedBatch(
        batch=batch,
        origin=batch.vehicle.market,
        rules=rules,
        categories=categories,
        tags=tags,
        purposes=purposes,
        values=values,
        zones=zones,
        unclassified_signals=unclassified,
    )


def _merged(
    categories: Iterable[str], more_categories: Iterable[str], tags: Iterable[str], more_tags: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Categories and tags with those a zone adds, in order, once each; ``general`` gives way to any other."""
    merged = tuple(dict.fromkeys([*categories, *more_categories]))
    if Category.GENERAL in merged and len(merged) > 1:
        merged = tuple(c for c in merged if c != Category.GENERAL)
    return merged, tuple(dict.fromkeys([*tags, *more_tags]))


@dataclass(frozen=True)
class FrameSource:
    """What the pack says about a frame before any pixel is looked at: its rule, purpose and zone."""

    policy: FramePolicy
    rule: CameraRule
    purpose: str
    zone: str | None  # the sensitive zone the frame was taken in, if any
    zone_categories: tuple[str, ...] = ()
    zone_tags: tuple[str, ...] = ()

    def labels(self, *, found: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The frame's categories and tags, given whether detection ``found`` faces or plates.

        A cabin frame, or a rule without ``categories_when_clear``, has its categories whatever was found.
        """
        rule = self.rule
        base = rule.categories
        if not found and rule.placement is not Placement.CABIN and rule.categories_when_clear is not None:
            base = rule.categories_when_clear
        return _merged((c.value for c in base), self.zone_categories, rule.tags, self.zone_tags)


def _frame_refusal(field_name: str, reason: str) -> ValidationError:
    return ValidationError(
        f"{field_name}: {reason}. Nothing was stored.", details=[{"field": field_name, "reason": reason}]
    )


def classify_frame_source(pack: LoadedPack, meta: FrameMeta) -> FrameSource:
    """The camera rule, purpose and sensitive zone of a frame under ``pack`` (the pack of the vehicle's market).

    Raises:
        ValidationError: the pack has no ``frames`` section, no camera rule matches ``camera``, or the rule may
            not collect frames for ``purpose``. Nothing has been stored.
    """
    policy = pack.pack.frames
    if policy is None:
        raise ValidationError(
            f"the rule pack in force for {pack.jurisdiction} ({pack.pack.pack}) has no `frames` section; "
            "camera frames of this market cannot be classified, so none are accepted"
        )
    rule = pack.camera_rule(meta.camera)
    if rule is None:
        raise _frame_refusal("camera", f"no camera rule of pack {pack.pack.pack} matches this camera id")
    purpose = meta.purpose or rule.purposes[0]
    if purpose not in rule.purposes:
        raise _frame_refusal("purpose", f"frames of rule {rule.id} may be collected for: {', '.join(rule.purposes)}")
    zone = None
    if meta.latitude is not None and meta.longitude is not None and pack.zones.zones:
        zone = pack.zones.hits([meta.longitude], [meta.latitude])[0]
    if zone is None:
        return FrameSource(policy, rule, purpose, None)
    zone_rule = pack.zone_rule(zone)
    return FrameSource(policy, rule, purpose, zone, tuple(c.value for c in zone_rule.categories), tuple(zone_rule.tags))


def classify_frame(frame: FrameBatch, source: FrameSource, anonymised: AnonymizedFrame) -> ClassifiedBatch:
    """The frame as a classified one-record batch (signal ``CameraFrame``), ready for the minimise stage.

    The record holds the camera, the image's size and the counts of faces and plates hidden: never crops, and
    not the blob key (it holds the region's own vehicle pseudonym, which must not travel in exports).
    """
    rule = source.rule
    categories, tags = source.labels(found=anonymised.faces + anonymised.plates > 0)
    value = {
        "camera": frame.meta.camera,
        "placement": rule.placement.value,
        "frame": True,  # the image is a blob, found from vehicle and message id, never named here
        "anonymised": True,
        "media_type": anonymised.media_type,
        "width": anonymised.width,
        "height": anonymised.height,
        "faces": anonymised.faces,
        "plates": anonymised.plates,
        "conditions": list(anonymised.conditions),
    }
    resolved = ResolvedRule(
        rule_id=rule.id,
        categories=categories,
        tags=tags,
        purposes=tuple(rule.purposes),
        value_kind="object",
        article=f"{rule.source.instrument} {rule.source.article}",
        known=True,
        categories_csv=",".join(categories),
        tags_csv=",".join(tags),
    )
    batch = SignalBatch(
        vehicle=frame.vehicle,
        received_ms=frame.received_ms,
        msg_ids=[frame.meta.msg_id],
        ts_ms=[frame.meta.ts_ms],
        signals=[FRAME_SIGNAL],
        values=[value],
        purposes=[source.purpose],
        profiles=[None],
    )
    return ClassifiedBatch(
        batch=batch,
        origin=frame.vehicle.market,
        rules=[resolved],
        categories=[categories],
        tags=[tags],
        purposes=[source.purpose],
        values=[value],
        zones=[source.zone],
        unclassified_signals=[],
    )
