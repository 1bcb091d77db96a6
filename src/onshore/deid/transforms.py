"""De-identification before release: named transforms over column-shaped record chunks.

Transforms are looked up by name (``TRANSFORMS``); the pack's class rules and a basis's conditions name them,
with parameters. Each works on whole columns (numpy where it pays), never on one record object at a time.

- ``drop_direct_identifiers``: drop records whose values are identifiers (tag ``identifier``: VIN, names…);
  message ids and zone names are never exported at all.
- ``pseudonymise``: vehicle and subject refs become HMAC-SHA-256 pseudonyms under a per-recipient key
  (derived from a region-held key), so two recipients cannot join their data and none sees the region's own
  pseudonyms. The bundle writer applies it to every record; naming it in the pack puts it in the reasons.
- ``coarsen_position``: positions snapped to the centre of a square grid cell (``cell_deg``, default 0.01°,
  about 1.1 km north-south), or to an H3 cell (``grid: h3``, ``resolution``) when the optional ``h3``
  package is installed.
- ``coarsen_time``: timestamps floored to ``bucket_s`` seconds (default 3600).
- ``suppress_sensitive_positions``: records positioned in a sensitive zone are removed — by the zone noted at
  ingest, the ``sensitive_area`` tag, or the pack's current zones (zones may have been added since).
- ``anonymise_faces_plates``: records carrying an image (a value object with ``frame``, ``image``, ``blob``,
  ``jpeg`` or ``png``) leave only when marked ``"anonymised": true`` by the vision stage; otherwise dropped.
  Scalar camera-state signals pass. Frames themselves are not exported by this gate.
- ``aggregate``: the class leaves only as flow statistics: distinct vehicles per grid cell and time bucket,
  optionally with differential privacy (``epsilon``; OpenDP's Laplace mechanism on integer counts, each
  vehicle's contribution bounded to ``max_cells_per_vehicle`` cells, so the L1 sensitivity is that bound),
  counts below ``min_count`` suppressed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from onshore.deid.coarsen import snap_to_cell
from onshore.deid.pseudonyms import pseudonym
from onshore.errors import InputError
from onshore.geo.zones import ZoneIndex
from onshore.rules.outbound import TransformSpec

_IMAGE_KEYS = ("frame", "image", "blob", "jpeg", "png")


@dataclass
class Columns:
    """Records of one data class, column-wise. ``value`` is JSON text (None once suppressed)."""

    cls: list[str]
    ts_ms: list[int]
    signal: list[str]
    value: list[str | None]
    categories: list[str]
    tags: list[str]
    purpose: list[str]
    vehicle: list[str]
    subject: list[str]
    zone: list[str | None]

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, keep: list[int]) -> Columns:
        """Only the records at ``keep`` (in order)."""
        return Columns(**{name: [col[i] for i in keep] for name, col in self.__dict__.items()})

    def where(self, mask: np.ndarray) -> Columns:
        return self.take(np.flatnonzero(mask).tolist())


@dataclass
class FlowStats:
    """Distinct vehicles per (cell, bucket) of the classes under ``aggregate``, per class."""

    cells: dict[str, dict[tuple[float, float, int], set[str]]] = field(default_factory=dict)
    per_vehicle: dict[str, dict[str, int]] = field(default_factory=dict)
    params: dict[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class TransformContext:
    """What transforms need besides the columns: the recipient's key, the zones, and tallies."""

    recipient_key: bytes
    zones: ZoneIndex
    flows: FlowStats = field(default_factory=FlowStats)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    _pseudonyms: dict[str, str] = field(default_factory=dict)

    def tally(self, cls: str, name: str, n: int) -> None:
        if n:
            per = self.stats.setdefault(cls, {})
            per[name] = per.get(name, 0) + n

    def pseudonym(self, ref: str) -> str:
        found = self._pseudonyms.get(ref)
        if found is None:
            found = self._pseudonyms[ref] = pseudonym(self.recipient_key, ref)
        return found


Transform = Callable[[Columns, Mapping[str, Any], TransformContext], Columns]


def _tags_have(cols: Columns, wanted: set[str]) -> np.ndarray:
    cache: dict[str, bool] = {}
    out = np.zeros(len(cols), dtype=bool)
    for i, tags in enumerate(cols.tags):
        hit = cache.get(tags)
        if hit is None:
            hit = cache[tags] = bool(wanted & set(tags.split(",")))
        out[i] = hit
    return out


def drop_direct_identifiers(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    tags = set(str(params.get("tags", "identifier")).split(","))
    drop = _tags_have(cols, tags)
    if drop.any():
        ctx.tally(cols.cls[0], "dropped_identifiers", int(drop.sum()))
        cols = cols.where(~drop)
    return cols


def pseudonymise(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    p = ctx.pseudonym
    cols.vehicle = [p(ref) for ref in cols.vehicle]
    cols.subject = [p(ref) for ref in cols.subject]
    return cols


def _positions(cols: Columns) -> tuple[list[int], list[Any]]:
    """Indexes and parsed values of records whose value is a position or a coordinate."""
    index: list[int] = []
    parsed: list[Any] = []
    loads = orjson.loads
    location = _tags_have(cols, {"location"})
    for i in np.flatnonzero(location).tolist():
        text = cols.value[i]
        if text is None:
            continue
        value = loads(text)
        is_point = isinstance(value, dict) and "latitude" in value and "longitude" in value
        if is_point or (isinstance(value, float | int) and not isinstance(value, bool)):
            index.append(i)
            parsed.append(value)
    return index, parsed


def coarsen_position(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    index, parsed = _positions(cols)
    if not index:
        return cols
    grid = str(params.get("grid", "square"))
    pairs = [(v["latitude"], v["longitude"]) if isinstance(v, dict) else (float(v), None) for v in parsed]
    if grid == "h3":
        try:
            import h3  # optional
        except ImportError:
            raise InputError("coarsen_position grid h3 needs the h3 package: pip install h3") from None
        resolution = int(params.get("resolution", 7))
        for i, (lat, lon) in zip(index, pairs, strict=True):
            if lon is None:
                cols.value[i] = None  # a lone coordinate cannot be placed in a cell
                continue
            cell = h3.latlng_to_cell(lat, lon, resolution)
            clat, clon = h3.cell_to_latlng(cell)
            cols.value[i] = orjson.dumps({"latitude": round(clat, 6), "longitude": round(clon, 6), "h3": cell}).decode()
    elif grid == "square":
        step = float(params.get("cell_deg", 0.01))
        if not 0 < step <= 10:
            raise InputError(f"coarsen_position cell_deg {step} must be in (0, 10]")
        lats = snap_to_cell(np.array([lat for lat, _ in pairs], dtype=float), step)
        lons = snap_to_cell(np.array([lon if lon is not None else math.nan for _, lon in pairs], dtype=float), step)
        dumps = orjson.dumps
        for j, i in enumerate(index):
            if pairs[j][1] is None:
                cols.value[i] = dumps(float(lats[j])).decode()
            else:
                cols.value[i] = dumps({"latitude": float(lats[j]), "longitude": float(lons[j])}).decode()
    else:
        raise InputError(f"coarsen_position grid {grid!r} is unknown; valid: square, h3")
    ctx.tally(cols.cls[0], "coarsened_positions", len(index))
    return cols


def coarsen_time(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    bucket = int(params.get("bucket_s", 3600)) * 1000
    if bucket <= 0:
        raise InputError("coarsen_time bucket_s must be positive")
    ts = np.asarray(cols.ts_ms, dtype=np.int64)
    cols.ts_ms = (ts - ts % bucket).tolist()
    return cols


def suppress_sensitive_positions(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    tags = set(str(params.get("tags", "sensitive_area")).split(","))
    drop = _tags_have(cols, tags) | np.array([z is not None for z in cols.zone], dtype=bool)
    index, parsed = _positions(cols)
    points = [(i, v) for i, v in zip(index, parsed, strict=True) if isinstance(v, dict)]
    if points and ctx.zones.zones:
        hits = ctx.zones.hits([v["longitude"] for _, v in points], [v["latitude"] for _, v in points])
        for (i, _), hit in zip(points, hits, strict=True):
            if hit is not None:
                drop[i] = True
    return _without(cols, drop, ctx, "suppressed_sensitive_positions")


def anonymise_faces_plates(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    drop = np.zeros(len(cols), dtype=bool)
    for i, text in enumerate(cols.value):
        if text is None or not text.startswith("{"):
            continue
        value = orjson.loads(text)
        if any(k in value for k in _IMAGE_KEYS) and value.get("anonymised") is not True:
            drop[i] = True
    return _without(cols, drop, ctx, "dropped_unanonymised_images")


def _without(cols: Columns, drop: np.ndarray, ctx: TransformContext, tally: str) -> Columns:
    """``cols`` without the records marked in ``drop``, counted under ``tally`` in the class's statistics."""
    if not drop.any():
        return cols
    ctx.tally(cols.cls[0], tally, int(drop.sum()))
    return cols.where(~drop)


def aggregate(cols: Columns, params: Mapping[str, Any], ctx: TransformContext) -> Columns:
    cls = cols.cls[0] if len(cols) else ""
    if not len(cols):
        return cols
    step = float(params.get("cell_deg", 0.01))
    bucket = int(params.get("bucket_s", 3600)) * 1000
    bound = int(params.get("max_cells_per_vehicle", 24))
    cells = ctx.flows.cells.setdefault(cls, {})
    per_vehicle = ctx.flows.per_vehicle.setdefault(cls, {})
    ctx.flows.params[cls] = dict(params)
    index, parsed = _positions(cols)
    for i, value in zip(index, parsed, strict=True):
        if not isinstance(value, dict):
            continue
        lat = snap_to_cell(float(value["latitude"]), step)
        lon = snap_to_cell(float(value["longitude"]), step)
        key = (lat, lon, cols.ts_ms[i] - cols.ts_ms[i] % bucket)
        vehicle = ctx.pseudonym(cols.vehicle[i])
        members = cells.setdefault(key, set())
        if vehicle in members:
            continue
        if per_vehicle.get(vehicle, 0) >= bound:
            continue  # contribution bound: what keeps the DP sensitivity at `bound`
        per_vehicle[vehicle] = per_vehicle.get(vehicle, 0) + 1
        members.add(vehicle)
    ctx.tally(cls, "aggregated_records", len(cols))
    return cols.take([])


def release_flows(ctx: TransformContext) -> list[dict[str, Any]]:
    """The flow statistics of every aggregated class, noised and thresholded as each class's params say."""
    out: list[dict[str, Any]] = []
    for cls, cells in sorted(ctx.flows.cells.items()):
        params = ctx.flows.params.get(cls, {})
        keys = sorted(cells)
        counts = [len(cells[k]) for k in keys]
        epsilon = params.get("epsilon")
        if epsilon is not None and counts:
            counts = laplace_counts(counts, float(epsilon), int(params.get("max_cells_per_vehicle", 24)))
        floor = int(params.get("min_count", 1))
        for (lat, lon, bucket), n in zip(keys, counts, strict=True):
            if n >= floor:
                out.append({"class": cls, "cell_lat": lat, "cell_lon": lon, "bucket_start_ms": bucket, "vehicles": n})
    return out


def laplace_counts(counts: list[int], epsilon: float, sensitivity: int) -> list[int]:
    """Integer counts with discrete Laplace noise of scale ``sensitivity / epsilon`` (OpenDP), clamped at 0."""
    if epsilon <= 0:
        raise InputError("aggregate epsilon must be positive")
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    mechanism = dp.m.make_laplace(*space, scale=sensitivity / epsilon)
    return [max(0, int(n)) for n in mechanism(counts)]


TRANSFORMS: dict[str, Transform] = {
    "drop_direct_identifiers": drop_direct_identifiers,
    "pseudonymise": pseudonymise,
    "coarsen_position": coarsen_position,
    "coarsen_time": coarsen_time,
    "suppress_sensitive_positions": suppress_sensitive_positions,
    "anonymise_faces_plates": anonymise_faces_plates,
    "aggregate": aggregate,
}
TRANSFORM_NAMES = frozenset(TRANSFORMS)
# Order of application: removals first, then value and time coarsening, aggregation last.
_ORDER = {
    "drop_direct_identifiers": 0,
    "anonymise_faces_plates": 1,
    "suppress_sensitive_positions": 2,
    "coarsen_position": 3,
    "coarsen_time": 4,
    "aggregate": 5,
    "pseudonymise": 6,
}


# When the pack and a basis both ask for a transform, the more protective parameter wins.
_PROTECTIVE: dict[str, Callable[[float, float], float]] = {
    "cell_deg": max,
    "bucket_s": max,
    "min_count": max,
    "max_cells_per_vehicle": min,
    "epsilon": min,
}


def merge_specs(specs: list[TransformSpec]) -> list[TransformSpec]:
    """One spec per transform name, in the order of application; shared numeric parameters take the more
    protective value (coarser cells and buckets, higher floors, smaller epsilon)."""
    merged: dict[str, dict[str, Any]] = {}
    for spec in specs:
        params = merged.setdefault(spec.name, {})
        for key, value in spec.params.items():
            pick = _PROTECTIVE.get(key)
            if key in params and pick is not None and isinstance(value, int | float) and not isinstance(value, bool):
                params[key] = pick(params[key], value)
            else:
                params[key] = value
    names = sorted(merged, key=lambda n: _ORDER.get(n, 99))
    return [TransformSpec(name=n, params=merged[n]) for n in names]


def get_transform(name: str) -> Transform:
    """Raises InputError listing the valid names when ``name`` is unknown."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise InputError(f"transform {name!r} is unknown; valid: {', '.join(sorted(TRANSFORMS))}") from None
