"""Classify: each record's categories and tags under the law of its origin, and its zone.

The origin is the authenticated vehicle's market. Values are checked against the shape the pack
declares for the signal; a position inside a sensitive zone adds the zone rule's categories (Art. 3(1)).
"""

from __future__ import annotations

import re
from typing import Any

from onshore.errors import ValidationError
from onshore.model import ClassifiedBatch, SignalBatch
from onshore.rules.loader import LoadedPack
from onshore.rules.schema import Category

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
            categories[i] = tuple(dict.fromkeys([*categories[i], *(c.value for c in zone_rule.categories)]))
            tags[i] = tuple(dict.fromkeys([*tags[i], *zone_rule.tags]))
            if Category.GENERAL in categories[i] and len(categories[i]) > 1:
                categories[i] = tuple(c for c in categories[i] if c != Category.GENERAL)
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
