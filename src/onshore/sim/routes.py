"""Synthetic road-like routes: a Manhattan-grid walk toward a goal, driven with simple car kinematics.

Everything here is generated from a seeded ``random.Random``; no real trajectory is read. A route
lives in local metres (east, north) around a city centre and turns into latitude/longitude only when
a position is reported. The sensitive zones some routes pass through are read from the rule pack's
zone file, so the simulator and the classifier always agree on where the zones are.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import shape

METRES_PER_DEGREE_LAT = 111_320.0
MAX_SPEED_MPS = 120 / 3.6
ACCELERATION_MPS2 = 2.0
DECELERATION_MPS2 = 2.5
ARRIVAL_TOLERANCE_M = 5.0
RED_LIGHT_SHARE = 0.3
RED_LIGHT_WAIT_S = (10.0, 60.0)
TURN_SPEED_MPS = 5.0
U_TURN_SPEED_MPS = 2.5
CRUISE_DRIFT_LIMIT_MPS = 1.5

# (share of segments, cruise speed range km/h, block length range m): streets, arterials, expressways.
ROAD_CLASSES = (
    (0.6, (30.0, 50.0), (120.0, 400.0)),
    (0.3, (50.0, 70.0), (300.0, 800.0)),
    (0.1, (80.0, 120.0), (1000.0, 3000.0)),
)

# Grid directions as (east unit, north unit, heading in degrees clockwise from north).
DIRECTIONS = ((0.0, 1.0, 0), (1.0, 0.0, 90), (0.0, -1.0, 180), (-1.0, 0.0, 270))

DEFAULT_ZONES_PATH = Path(__file__).resolve().parent.parent / "rules" / "packs" / "zones" / "cn-illustrative.geojson"


@dataclass(frozen=True, slots=True)
class City:
    """A city the simulator drives in, with the local flat-earth projection its routes use."""

    name: str
    market: str  # jurisdiction of the vehicles sold and driven there
    latitude: float
    longitude: float
    mean_temp_c: float

    def to_lat_lon(self, east_m: float, north_m: float) -> tuple[float, float]:
        """Latitude and longitude of a point given in metres east and north of the centre."""
        latitude = self.latitude + north_m / METRES_PER_DEGREE_LAT
        longitude = self.longitude + east_m / (METRES_PER_DEGREE_LAT * math.cos(math.radians(self.latitude)))
        return latitude, longitude

    def to_metres(self, latitude: float, longitude: float) -> tuple[float, float]:
        """Metres east and north of the centre of a point given in degrees."""
        north_m = (latitude - self.latitude) * METRES_PER_DEGREE_LAT
        east_m = (longitude - self.longitude) * METRES_PER_DEGREE_LAT * math.cos(math.radians(self.latitude))
        return east_m, north_m


CITIES: dict[str, City] = {
    city.name: city
    for city in (
        City("Beijing", "CN", 39.90, 116.39, 13.0),
        City("Guiyang", "CN", 26.65, 106.63, 15.0),
        City("Shanghai", "CN", 31.23, 121.47, 17.0),
        City("Munich", "EU", 48.14, 11.58, 9.0),
        City("Paris", "EU", 48.86, 2.35, 12.0),
    )
}


def city_named(name: str) -> City:
    """The city called ``name``.

    Raises:
        ValueError: the name is not one of ``CITIES``; the message lists the valid names.
    """
    try:
        return CITIES[name]
    except KeyError:
        raise ValueError(f"unknown city {name!r}; choose one of {sorted(CITIES)}") from None


@dataclass(frozen=True, slots=True)
class SensitiveZone:
    """One polygon of a zone file, with a point guaranteed to lie inside it."""

    zone_id: str
    kind: str
    inside_lat: float
    inside_lon: float


def load_zones(path: Path = DEFAULT_ZONES_PATH) -> tuple[SensitiveZone, ...]:
    """Read the sensitive zones of a GeoJSON zone file (Polygon and MultiPolygon features).

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not GeoJSON with polygon features.
    """
    collection = json.loads(path.read_text(encoding="utf-8"))
    zones: list[SensitiveZone] = []
    for feature in collection.get("features", []):
        properties = feature.get("properties") or {}
        geometry = shape(feature["geometry"])
        parts = getattr(geometry, "geoms", [geometry])
        for part in parts:
            if part.geom_type != "Polygon":
                raise ValueError(f"zone {properties.get('id')!r} in {path} is a {part.geom_type}, not a Polygon")
            point = part.representative_point()
            zones.append(SensitiveZone(str(properties.get("id")), str(properties.get("kind", "")), point.y, point.x))
    return tuple(zones)


def zones_near(city: City, zones: tuple[SensitiveZone, ...], within_m: float = 15_000.0) -> list[SensitiveZone]:
    """The zones whose inside point lies within ``within_m`` metres of the city centre."""
    near = []
    for zone in zones:
        east_m, north_m = city.to_metres(zone.inside_lat, zone.inside_lon)
        if math.hypot(east_m, north_m) <= within_m:
            near.append(zone)
    return near


def random_point(rng: random.Random, radius_m: float) -> tuple[float, float]:
    """A point (east, north metres) uniformly distributed in a disc around the city centre."""
    distance_m = radius_m * math.sqrt(rng.random())
    angle = rng.uniform(0.0, 2.0 * math.pi)
    return distance_m * math.cos(angle), distance_m * math.sin(angle)


def crossing_through(
    rng: random.Random, point_m: tuple[float, float], reach_m: tuple[float, float] = (600.0, 2000.0)
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A start and a goal on one grid line, on opposite sides of ``point_m``.

    A route driven from the start to the goal with directness 1 goes straight through the point.
    """
    east_unit, north_unit, _ = rng.choice(DIRECTIONS)
    before_m = rng.uniform(*reach_m)
    after_m = rng.uniform(*reach_m)
    start_m = (point_m[0] - east_unit * before_m, point_m[1] - north_unit * before_m)
    goal_m = (point_m[0] + east_unit * after_m, point_m[1] + north_unit * after_m)
    return start_m, goal_m


def _road_class(pick: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Cruise speed range and block length range of the road class a uniform draw in [0, 1) falls in."""
    for share, cruise_kmh, block_m in ROAD_CLASSES:
        pick -= share
        if pick < 0.0:
            return cruise_kmh, block_m
    return ROAD_CLASSES[-1][1], ROAD_CLASSES[-1][2]


@dataclass(slots=True)
class _Segment:
    direction: int  # index into DIRECTIONS
    length_m: float
    cruise_mps: float


class GridRoute:
    """A car driving a Manhattan-like grid walk toward a goal.

    At every intersection the car heads along the axis with the larger distance to the goal with
    probability ``directness``, otherwise it goes straight, left or right at random. It accelerates to
    the road's cruise speed, brakes for turns, stops at red lights and stops at the goal, after which
    ``arrived`` is true until ``set_goal`` gives it a new one.
    """

    def __init__(
        self, rng: random.Random, start_m: tuple[float, float], goal_m: tuple[float, float], directness: float
    ) -> None:
        self.east_m, self.north_m = start_m
        self.speed_mps = 0.0
        self.heading_deg = 0
        self.arrived = False
        self._rng = rng
        self._goal_m = goal_m
        self._directness = directness
        self._cruise_drift_mps = 0.0
        self._remaining_m = 0.0
        self._end_speed_mps = 0.0
        self._red_light_wait_s = 0.0
        self._waiting_s = 0.0
        self._segment: _Segment | None = None
        self._next: _Segment | None = None
        self._start(self._plan(self.east_m, self.north_m, None))

    @property
    def goal_m(self) -> tuple[float, float]:
        """Where the current trip ends, in metres east and north of the city centre."""
        return self._goal_m

    def set_goal(self, goal_m: tuple[float, float], directness: float) -> None:
        """Start a new trip from the current position toward ``goal_m``."""
        self._goal_m = goal_m
        self._directness = directness
        self.arrived = False
        previous = self._segment.direction if self._segment else None
        self._start(self._plan(self.east_m, self.north_m, previous))

    def advance(self, dt_s: float) -> float:
        """Drive for ``dt_s`` seconds; return the distance covered in metres."""
        if self.arrived:
            self.speed_mps = 0.0
            return 0.0
        if self._waiting_s > 0.0:
            self._waiting_s -= dt_s
            if self._waiting_s <= 0.0:
                self._start(self._next)
            return 0.0
        segment = self._segment
        assert segment is not None
        drift = self._cruise_drift_mps + self._rng.uniform(-0.3, 0.3)
        self._cruise_drift_mps = max(-CRUISE_DRIFT_LIMIT_MPS, min(CRUISE_DRIFT_LIMIT_MPS, drift))
        brake_limit_mps = math.sqrt(self._end_speed_mps**2 + 2.0 * DECELERATION_MPS2 * self._remaining_m)
        speed_mps = min(
            self.speed_mps + ACCELERATION_MPS2 * dt_s,
            segment.cruise_mps + self._cruise_drift_mps,
            brake_limit_mps,
            MAX_SPEED_MPS,
        )
        speed_mps = max(speed_mps, 0.5)  # creep rather than stall short of the stop line
        step_m = speed_mps * dt_s
        east_unit, north_unit, _ = DIRECTIONS[segment.direction]
        if step_m < self._remaining_m:
            self._remaining_m -= step_m
            self.east_m += east_unit * step_m
            self.north_m += north_unit * step_m
            self.speed_mps = speed_mps
            return step_m
        step_m = self._remaining_m
        self.east_m += east_unit * step_m
        self.north_m += north_unit * step_m
        if self._next is None:
            self.speed_mps = 0.0
            self.arrived = True
        elif self._end_speed_mps == 0.0:
            self.speed_mps = 0.0
            self._waiting_s = self._red_light_wait_s
        else:
            self.speed_mps = min(speed_mps, self._end_speed_mps)
            self._start(self._next)
        return step_m

    def _start(self, segment: _Segment | None) -> None:
        if segment is None:
            self.arrived = True
            self.speed_mps = 0.0
            return
        self._segment = segment
        self._remaining_m = segment.length_m
        self.heading_deg = DIRECTIONS[segment.direction][2]
        east_unit, north_unit, _ = DIRECTIONS[segment.direction]
        end_east_m = self.east_m + east_unit * segment.length_m
        end_north_m = self.north_m + north_unit * segment.length_m
        self._next = self._plan(end_east_m, end_north_m, segment.direction)
        self._red_light_wait_s = 0.0
        if self._next is None:
            self._end_speed_mps = 0.0
        elif self._rng.random() < RED_LIGHT_SHARE:
            self._end_speed_mps = 0.0
            self._red_light_wait_s = self._rng.uniform(*RED_LIGHT_WAIT_S)
        elif self._next.direction == segment.direction:
            self._end_speed_mps = min(segment.cruise_mps, self._next.cruise_mps)
        elif (self._next.direction - segment.direction) % 4 == 2:
            self._end_speed_mps = U_TURN_SPEED_MPS
        else:
            self._end_speed_mps = TURN_SPEED_MPS

    def _plan(self, east_m: float, north_m: float, previous: int | None) -> _Segment | None:
        """The segment driven from an intersection, or None when the intersection is the goal."""
        to_east_m = self._goal_m[0] - east_m
        to_north_m = self._goal_m[1] - north_m
        if abs(to_east_m) < ARRIVAL_TOLERANCE_M and abs(to_north_m) < ARRIVAL_TOLERANCE_M:
            return None
        cruise_kmh, block_m = _road_class(self._rng.random())
        cruise_mps = self._rng.uniform(*cruise_kmh) / 3.6
        length_m = self._rng.uniform(*block_m)
        if self._rng.random() < self._directness:
            if abs(to_east_m) >= abs(to_north_m):
                direction, along_m = (1 if to_east_m > 0 else 3), abs(to_east_m)
            else:
                direction, along_m = (0 if to_north_m > 0 else 2), abs(to_north_m)
            if along_m - length_m < 60.0:  # no stub block just short of the goal's cross street
                length_m = along_m
        else:
            choices = [d for d in range(4) if previous is None or (d - previous) % 4 != 2]
            direction = self._rng.choice(choices)
        return _Segment(direction, length_m, cruise_mps)
