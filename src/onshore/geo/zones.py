"""Sensitive zones: GeoJSON polygons, and a batch point-in-zone test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from onshore.errors import RulePackError


@dataclass(frozen=True)
class Zone:
    zone_id: str
    rule_id: str
    geometry: shapely.Geometry


class ZoneIndex:
    """All zones of a pack. ``hits`` answers for many points at once (vectorised shapely)."""

    def __init__(self, zones: Sequence[Zone]) -> None:
        self.zones = list(zones)
        self.rule_of: dict[str, str] = {z.zone_id: z.rule_id for z in self.zones}
        for zone in self.zones:
            shapely.prepare(zone.geometry)
        self._bounds = shapely.total_bounds([z.geometry for z in self.zones]) if self.zones else None

    @classmethod
    def from_files(cls, files: Sequence[tuple[str, Path]]) -> ZoneIndex:
        """Read ``(rule_id, path)`` GeoJSON FeatureCollections.

        Raises:
            RulePackError: a file is missing or holds no valid polygon.
        """
        zones: list[Zone] = []
        for rule_id, path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RulePackError(f"zone rule {rule_id!r}: cannot read {path} ({exc.__class__.__name__})") from exc
            features = data.get("features") if isinstance(data, dict) else None
            if not isinstance(features, list) or not features:
                raise RulePackError(f"zone rule {rule_id!r}: {path} is not a GeoJSON FeatureCollection")
            for i, feature in enumerate(features):
                try:
                    geometry = shape(feature["geometry"])
                except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
                    raise RulePackError(f"zone rule {rule_id!r}: {path} feature {i}: invalid geometry") from exc
                if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
                    raise RulePackError(f"zone rule {rule_id!r}: {path} feature {i}: not a valid polygon")
                zone_id = str((feature.get("properties") or {}).get("id", f"{rule_id}#{i}"))
                zones.append(Zone(zone_id=zone_id, rule_id=rule_id, geometry=geometry))
        return cls(zones)

    def hits(self, lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        """The id of the first zone containing each point, or None."""
        n = len(lons)
        result: list[str | None] = [None] * n
        if not self.zones or n == 0 or self._bounds is None:
            return result
        x = np.asarray(lons, dtype=float)
        y = np.asarray(lats, dtype=float)
        minx, miny, maxx, maxy = self._bounds
        candidates = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        if not candidates.any():
            return result
        idx = np.nonzero(candidates)[0]
        for zone in self.zones:
            inside = shapely.contains_xy(zone.geometry, x[idx], y[idx])
            for i in idx[inside]:
                if result[i] is None:
                    result[i] = zone.zone_id
        return result
