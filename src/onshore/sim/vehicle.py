"""One simulated vehicle: a route through its city, a battery, a driver seat, a media player, a navigation goal.

Every value is synthetic and deterministic from the vehicle's seed. ``step`` advances its state, ``readings``
gives the current value of each signal of ``signals.SIGNAL_NAMES``.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from onshore.sim.routes import (
    City,
    GridRoute,
    SensitiveZone,
    city_named,
    crossing_through,
    load_zones,
    random_point,
    zones_near,
)
from onshore.sim.signals import FLEET_TELEMETRY, MEDIA_TRACKS, SIGNAL_NAMES, VSS
from onshore.sim.vins import vin_is_well_formed

VSS_SHARE = 0.2  # share of vehicles that speak VSS instead of fleet-telemetry
ZONE_VISIT_SHARE = 0.3  # share of CN vehicles near a sensitive zone whose first trip crosses it
CITY_RADIUS_M = 5_000.0
MIN_TRIP_M = 1_500.0
DIRECTNESS = 0.75
PARK_S = (60.0, 600.0)
SEAT_EXIT_S = 3.0
PACK_KWH = 75.0
CHARGE_PCT_PER_S = 0.04
CHARGE_LIMIT_PCT = 90.0


@functools.lru_cache(maxsize=1)
def _illustrative_zones() -> tuple[SensitiveZone, ...]:
    return load_zones()


class SimulatedVehicle:
    """One synthetic vehicle: a route, a battery, a driver seat, a media player and a navigation goal.

    The first trip of a share of CN vehicles near a sensitive zone crosses that zone (``zone_id``
    names it); other trips go between random points of the city. At each destination the car parks
    for a while (the driver leaves, some cars charge), then sets off to a new destination.
    """

    def __init__(
        self,
        vin: str,
        market: str,
        city: str,
        seed: int,
        *,
        dialect: str | None = None,
        visits_zone: bool | None = None,
    ) -> None:
        """Place the vehicle at the start of its first trip.

        Args:
            vin: a well-formed synthetic VIN (see ``synthetic_vin``).
            market: "CN" or "EU"; must be the market of ``city``.
            city: a name from ``routes.CITIES``.
            seed: everything the vehicle does follows from it.
            dialect: "fleet_telemetry" or "vss"; drawn from the seed when None.
            visits_zone: whether the first trip crosses a nearby sensitive zone; drawn when None.

        Raises:
            ValueError: a malformed VIN, an unknown city or dialect, a market that is not the
                city's, or ``visits_zone=True`` for a city with no zone nearby.
        """
        if not vin_is_well_formed(vin):
            raise ValueError(f"VIN {vin!r} is not well formed; make one with synthetic_vin()")
        self.city: City = city_named(city)
        if self.city.market != market:
            raise ValueError(f"city {city!r} is in market {self.city.market!r}, not {market!r}")
        self.vin = vin
        self.market = market
        self.seed = seed
        rng = self._rng = random.Random(seed)
        drawn_dialect = VSS if rng.random() < VSS_SHARE else FLEET_TELEMETRY
        self.dialect = dialect or drawn_dialect
        if self.dialect not in SIGNAL_NAMES:
            raise ValueError(f"unknown dialect {dialect!r}; choose one of {sorted(SIGNAL_NAMES)}")
        nearby = zones_near(self.city, _illustrative_zones()) if market == "CN" else []
        drawn_visit = bool(nearby) and rng.random() < ZONE_VISIT_SHARE
        if visits_zone and not nearby:
            raise ValueError(f"no sensitive zone near {city!r}; cannot route a vehicle through one")
        self.zone_id: str | None = None
        if drawn_visit if visits_zone is None else visits_zone:
            zone = rng.choice(nearby)
            self.zone_id = zone.zone_id
            start_m, goal_m = crossing_through(rng, self.city.to_metres(zone.inside_lat, zone.inside_lon))
            self.route = GridRoute(rng, start_m, goal_m, directness=1.0)
        else:
            start_m = random_point(rng, CITY_RADIUS_M)
            self.route = GridRoute(rng, start_m, self._pick_destination(start_m), DIRECTNESS)
        self.odometer_km = rng.uniform(500.0, 60_000.0)
        self.soc_pct = rng.uniform(45.0, 95.0)
        self.outside_temp_c = self.city.mean_temp_c + rng.uniform(-5.0, 5.0)
        self.driver_seat_occupied = True
        self.gear = "D"
        self.charging = False
        self._accelerating = False
        self._parked_s = 0.0
        self._park_for_s = 0.0
        self._track = rng.randrange(len(MEDIA_TRACKS))
        self._track_left_s = rng.uniform(60.0, 240.0)
        self._destination = self._rounded_lat_lon(*self.route.goal_m)

    def __repr__(self) -> str:
        return f"SimulatedVehicle({self.vin!r}, {self.market!r}, {self.city.name!r}, {self.seed})"

    def step(self, dt_s: float) -> bool:
        """Advance the vehicle's state by ``dt_s`` seconds.

        Returns:
            False when no reading can have changed (waiting at a light, parked without charging),
            which lets the simulator skip comparing readings; True otherwise.
        """
        rng = self._rng
        changed = False
        if rng.random() < 0.002 * dt_s:
            warmer_odds = 0.5 + (self.city.mean_temp_c - self.outside_temp_c) / 20.0  # drifts back to the mean
            self.outside_temp_c += 0.5 if rng.random() < warmer_odds else -0.5
            changed = True
        route = self.route
        if route.arrived:
            return self._stay_parked(dt_s) or changed
        previous_speed_mps = route.speed_mps
        previous_heading_deg = route.heading_deg
        distance_m = route.advance(dt_s)
        self._track_left_s -= dt_s
        if self._track_left_s <= 0.0:
            self._track = (self._track + rng.randrange(1, len(MEDIA_TRACKS))) % len(MEDIA_TRACKS)
            self._track_left_s = rng.uniform(120.0, 300.0)
            changed = True
        if route.arrived:
            self.gear = "P"
            self._parked_s = 0.0
            self._park_for_s = rng.uniform(*PARK_S)
            self.charging = self.soc_pct < 35.0 or rng.random() < 0.2
            changed = True
        if distance_m == 0.0 and route.speed_mps == previous_speed_mps:
            return changed or route.heading_deg != previous_heading_deg
        self._accelerating = route.speed_mps > previous_speed_mps + 0.3
        speed_kmh = route.speed_mps * 3.6
        kwh_per_km = 0.12 + 1.2e-5 * speed_kmh * speed_kmh
        self.odometer_km += distance_m / 1000.0
        self.soc_pct = max(0.0, self.soc_pct - distance_m / 1000.0 * kwh_per_km / PACK_KWH * 100.0)
        return True

    def readings(self) -> tuple[Any, ...]:
        """The current value of every signal, rounded to what a vehicle reports, in ``SIGNAL_NAMES`` order.

        Locations are (latitude, longitude) tuples and the gear is "D" or "P"; the simulator turns
        them into the wire form of the vehicle's dialect.
        """
        route = self.route
        speed_mps = route.speed_mps
        artist, title = MEDIA_TRACKS[self._track]
        voltage = 330.0 + 0.7 * self.soc_pct
        if self._accelerating:
            voltage -= 8.0
        if speed_mps > 22.0:
            voltage -= 4.0
        if self.charging:
            voltage += 10.0
        return (
            round(speed_mps * 3.6, 1),
            round(self.odometer_km, 1),
            round(self.soc_pct, 1),
            self._rounded_lat_lon(route.east_m, route.north_m),
            route.heading_deg,
            self.gear,
            self._destination,
            self.driver_seat_occupied,
            artist,
            title,
            round(voltage * 2.0) / 2.0,
            round(self.outside_temp_c * 2.0) / 2.0,
        )

    def _stay_parked(self, dt_s: float) -> bool:
        self._parked_s += dt_s
        self._accelerating = False
        changed = False
        if self.driver_seat_occupied and self._parked_s >= SEAT_EXIT_S:
            self.driver_seat_occupied = False
            changed = True
        if self.charging:
            self.soc_pct = min(CHARGE_LIMIT_PCT, self.soc_pct + CHARGE_PCT_PER_S * dt_s)
            self.charging = self.soc_pct < CHARGE_LIMIT_PCT
            changed = True
        if self._parked_s >= self._park_for_s:
            self.driver_seat_occupied = True
            self.gear = "D"
            self.charging = False
            route = self.route
            route.set_goal(self._pick_destination((route.east_m, route.north_m)), DIRECTNESS)
            self._destination = self._rounded_lat_lon(*route.goal_m)
            changed = True
        return changed

    def _pick_destination(self, from_m: tuple[float, float]) -> tuple[float, float]:
        for _ in range(20):
            goal_m = random_point(self._rng, CITY_RADIUS_M)
            if abs(goal_m[0] - from_m[0]) + abs(goal_m[1] - from_m[1]) >= MIN_TRIP_M:
                break
        return goal_m

    def _rounded_lat_lon(self, east_m: float, north_m: float) -> tuple[float, float]:
        latitude, longitude = self.city.to_lat_lon(east_m, north_m)
        return round(latitude, 6), round(longitude, 6)
