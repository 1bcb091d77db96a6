"""A simulated fleet: vehicles driving synthetic routes and the change-only signal records they send.

Every value here is synthetic and deterministic from a seed: VINs, routes, media, everything. Records
have the ingest API's shape ``{"msg_id", "ts", "signal", "value"}``; like fleet-telemetry, a vehicle
sends a signal only when its value changed, and may resend an earlier record (``duplicate_rate``) or
send a vendor signal no rule pack knows (``unknown_signal_rate``). Most vehicles name signals the
fleet-telemetry way, some the COVESA VSS way. Units: km/h, km, %, V, degrees Celsius.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

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
RESEND_WINDOW = 32

FLEET_TELEMETRY = "fleet_telemetry"
VSS = "vss"
# Positions in SimulatedVehicle.readings() that need a wire form.
LOCATION, GEAR, DESTINATION = 3, 5, 6
SIGNAL_NAMES: dict[str, tuple[str, ...]] = {
    FLEET_TELEMETRY: (
        "VehicleSpeed", "Odometer", "Soc", "Location", "GpsHeading", "Gear", "DestinationLocation",
        "DriverSeatOccupied", "MediaNowPlayingArtist", "MediaNowPlayingTitle", "PackVoltage", "OutsideTemp",
    ),
    VSS: (
        "Vehicle.Speed",
        "Vehicle.TraveledDistance",
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "Vehicle.CurrentLocation",
        "Vehicle.CurrentLocation.Heading",
        "Vehicle.Powertrain.Transmission.SelectedGear",
        "Vehicle.Cabin.Infotainment.Navigation.DestinationSet",
        "Vehicle.Cabin.Seat.Row1.DriverSide.IsOccupied",
        "Vehicle.Cabin.Infotainment.Media.Played.Artist",
        "Vehicle.Cabin.Infotainment.Media.Played.Track",
        "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
        "Vehicle.Exterior.AirTemperature",
    ),
}  # fmt: skip
GEAR_VALUES: dict[str, dict[str, Any]] = {
    FLEET_TELEMETRY: {"D": "ShiftStateD", "P": "ShiftStateP"},
    VSS: {"D": 127, "P": 126},
}
UNKNOWN_SIGNALS = ("VendorExperimentalFoo", "VendorExperimentalBarLevel", "VendorProtoTorqueSplit")
# Invented artists and titles; none names a real person or work.
MEDIA_TRACKS = (
    ("Lumen Parade", "Harbour Lights at Noon"),
    ("The Quiet Hertz", "Signal Fade"),
    ("Marigold Static", "Paper Satellites"),
    ("Orbit Lane Ensemble", "Ring Road Waltz"),
    ("Velvet Odometer", "Ninety Kilometres"),
    ("Cobalt Tramline", "Amber Crossing"),
    ("模拟乐团", "晨雾公路"),
)

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # ISO 3779: no I, O or Q
VIN_PREFIXES = {"CN": "LSYN", "EU": "WSYN"}
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True))}
_VIN_VALUES |= dict(zip("JKLMN", range(1, 6), strict=True)) | {"P": 7, "R": 9}
_VIN_VALUES |= dict(zip("STUVWXYZ", range(2, 10), strict=True))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[char] * weight for char, weight in zip(vin, _VIN_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def synthetic_vin(market: str, rng: random.Random) -> str:
    """A made-up 17-character VIN, well formed (alphabet, check digit in position 9), prefixed LSYN/WSYN.

    Raises:
        ValueError: ``market`` is not one of ``VIN_PREFIXES``.
    """
    if market not in VIN_PREFIXES:
        raise ValueError(f"unknown market {market!r}; choose one of {sorted(VIN_PREFIXES)}")
    descriptor = "".join(rng.choice(VIN_ALPHABET) for _ in range(4))
    tail = rng.choice("RSTV") + rng.choice(VIN_ALPHABET[10:]) + f"{rng.randrange(1_000_000):06d}"
    draft = VIN_PREFIXES[market] + descriptor + "0" + tail
    return draft[:8] + _vin_check_digit(draft) + draft[9:]


def vin_is_well_formed(vin: str) -> bool:
    """True when ``vin`` has 17 characters of the VIN alphabet and a correct check digit."""
    return len(vin) == 17 and all(char in _VIN_VALUES for char in vin) and vin[8] == _vin_check_digit(vin)


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


def make_fleet(n_vehicles: int, seed: int, *, eu_share: float = 0.25) -> list[SimulatedVehicle]:
    """``n_vehicles`` vehicles with unique synthetic VINs, spread over the cities of both markets.

    Raises:
        ValueError: ``n_vehicles`` is negative or ``eu_share`` is outside [0, 1].
    """
    if n_vehicles < 0 or not 0.0 <= eu_share <= 1.0:
        raise ValueError(f"need n_vehicles >= 0 and 0 <= eu_share <= 1, got {n_vehicles}, {eu_share}")
    rng = random.Random(seed)
    cities = {"CN": ("Beijing", "Guiyang", "Shanghai"), "EU": ("Munich", "Paris")}
    vehicles: list[SimulatedVehicle] = []
    vins: set[str] = set()
    while len(vehicles) < n_vehicles:
        market = "EU" if rng.random() < eu_share else "CN"
        vin = synthetic_vin(market, rng)
        if vin not in vins:
            vins.add(vin)
            vehicles.append(SimulatedVehicle(vin, market, rng.choice(cities[market]), rng.getrandbits(64)))
    return vehicles


def encode_ndjson(records: list[dict[str, Any]]) -> bytes:
    """Records as NDJSON: one compact JSON object per line, each line ending in a newline.

    The records must be this module's records, whose first key is ``msg_id`` and whose values hold
    no object inside a list.
    """
    if not records:
        return b""
    # One orjson call for the whole batch is ten times faster than one per record. Record boundaries
    # are the only place `},{"msg_id":` can occur: inside a JSON string the quotes would be escaped.
    return orjson.dumps(records)[1:-1].replace(b'},{"msg_id":', b'}\n{"msg_id":') + b"\n"


@dataclass(frozen=True, slots=True)
class SimBatch:
    """One NDJSON request body of one vehicle's records."""

    vehicle: SimulatedVehicle
    ndjson: bytes
    records: int
    ready_at_ms: int  # simulated time of the last tick the batch holds


class _RecordStream:
    """One vehicle's outgoing records: change detection, msg_id sequence, resends, unknown signals."""

    __slots__ = (
        "vehicle", "names", "gear_values", "start_ms", "tick_s", "unknown_signal_rate", "duplicate_rate",
        "rng", "tag", "seq", "tick_index", "now_ms", "previous", "recent",
    )  # fmt: skip

    def __init__(self, vehicle: SimulatedVehicle, start_ms: int, tick_s: float, unknown: float, resend: float):
        self.vehicle = vehicle
        self.names = SIGNAL_NAMES[vehicle.dialect]
        self.gear_values = GEAR_VALUES[vehicle.dialect]
        self.start_ms = start_ms
        self.tick_s = tick_s
        self.unknown_signal_rate = unknown
        self.duplicate_rate = resend
        # msg_ids carry a tag from the seed and start time, not a piece of the VIN (which is personal data).
        self.rng = random.Random(f"{vehicle.seed}:{start_ms}")
        self.tag = f"{self.rng.getrandbits(48):012x}"
        self.seq = 0
        self.tick_index = 0
        self.now_ms = start_ms
        self.previous: tuple[Any, ...] | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=RESEND_WINDOW)

    def next_tick(self) -> list[dict[str, Any]]:
        vehicle = self.vehicle
        ts = self.now_ms = self.start_ms + round(self.tick_index * self.tick_s * 1000.0)
        self.tick_index += 1
        if self.previous is not None and not vehicle.step(self.tick_s):
            return []
        current = vehicle.readings()
        previous = self.previous
        self.previous = current
        if previous is None:
            changed: Iterable[int] = range(len(current))
        elif previous == current:
            changed = ()
        else:
            changed = [index for index in range(len(current)) if current[index] != previous[index]]
        names, tag, seq = self.names, self.tag, self.seq
        records: list[dict[str, Any]] = []
        for index in changed:
            value: Any = current[index]
            if index in (LOCATION, DESTINATION):
                value = {"latitude": value[0], "longitude": value[1]}
            elif index == GEAR:
                value = self.gear_values[value]
            seq += 1
            records.append({"msg_id": f"{tag}-{seq}", "ts": ts, "signal": names[index], "value": value})
        rng = self.rng
        if self.unknown_signal_rate and rng.random() < self.unknown_signal_rate * len(records):
            seq += 1
            name = rng.choice(UNKNOWN_SIGNALS)
            records.append({"msg_id": f"{tag}-{seq}", "ts": ts, "signal": name, "value": round(rng.random(), 4)})
        self.seq = seq
        if self.duplicate_rate:
            resend = None
            if self.recent and rng.random() < self.duplicate_rate * len(records):
                resend = dict(rng.choice(self.recent))
            self.recent.extend(records)
            if resend is not None:
                records.append(resend)
        return records


class FleetSimulator:
    """Drives a fleet tick by tick and turns what changed into ingest records and NDJSON batches.

    Each vehicle keeps its own clock, so its records are the same whether it is driven by ``tick``,
    ``batches`` or ``records_ndjson``, and whatever the other vehicles do. One vehicle's stream must
    be driven by one thread at a time; different vehicles may be driven by different threads.
    """

    def __init__(
        self,
        vehicles: Iterable[SimulatedVehicle],
        start_ms: int,
        tick_s: float = 1.0,
        *,
        unknown_signal_rate: float = 0.0,
        duplicate_rate: float = 0.0,
    ) -> None:
        """Set up the fleet's record streams; nothing is generated yet.

        Args:
            vehicles: the fleet; VINs must be unique.
            start_ms: epoch milliseconds of the first tick; it also seeds the msg_ids, so two runs
                with different start times never share a msg_id.
            tick_s: simulated seconds between ticks.
            unknown_signal_rate: about this fraction of records is an unknown vendor signal.
            duplicate_rate: about this fraction of records is a resend of an earlier record.

        Raises:
            ValueError: a repeated VIN, a tick that is not positive, or a rate outside [0, 1].
        """
        self.vehicles = list(vehicles)
        if len({vehicle.vin for vehicle in self.vehicles}) != len(self.vehicles):
            raise ValueError("every vehicle of a fleet needs its own VIN")
        if tick_s <= 0.0 or not (0.0 <= unknown_signal_rate <= 1.0 and 0.0 <= duplicate_rate <= 1.0):
            raise ValueError(
                f"need tick_s > 0 and rates in [0, 1], got {tick_s}, {unknown_signal_rate}, {duplicate_rate}"
            )
        self.start_ms = start_ms
        self.tick_s = tick_s
        self._streams = {
            vehicle.vin: _RecordStream(vehicle, start_ms, tick_s, unknown_signal_rate, duplicate_rate)
            for vehicle in self.vehicles
        }

    def tick(self) -> list[tuple[SimulatedVehicle, list[dict[str, Any]]]]:
        """Advance every vehicle one tick; return each vehicle's new records (possibly none)."""
        return [(stream.vehicle, stream.next_tick()) for stream in self._streams.values()]

    def batch_stream(
        self,
        vehicle: SimulatedVehicle,
        max_records: int,
        n_ticks: int | None = None,
        flush_ticks: int | None = None,
    ) -> Iterator[SimBatch]:
        """One vehicle's records for the next ``n_ticks`` ticks (endless when None), in batches.

        A batch is sent when it holds ``max_records`` records, when ``flush_ticks`` ticks have passed
        since the last one (if given), and at the end.

        Raises:
            KeyError: the vehicle is not part of this fleet.
            ValueError: ``max_records`` is not positive.
        """
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        stream = self._streams[vehicle.vin]
        pending: list[dict[str, Any]] = []
        ticks_since_flush = 0
        for _ in itertools.count() if n_ticks is None else range(n_ticks):
            pending.extend(stream.next_tick())
            ticks_since_flush += 1
            while len(pending) >= max_records:
                chunk, pending = pending[:max_records], pending[max_records:]
                ticks_since_flush = 0
                yield SimBatch(vehicle, encode_ndjson(chunk), len(chunk), stream.now_ms)
            if pending and flush_ticks is not None and ticks_since_flush >= flush_ticks:
                yield SimBatch(vehicle, encode_ndjson(pending), len(pending), stream.now_ms)
                pending, ticks_since_flush = [], 0
        if pending:
            yield SimBatch(vehicle, encode_ndjson(pending), len(pending), stream.now_ms)

    def batches(self, vehicle: SimulatedVehicle, max_records: int, n_ticks: int | None = None) -> Iterator[bytes]:
        """NDJSON bodies of at most ``max_records`` records each; see ``batch_stream``."""
        for batch in self.batch_stream(vehicle, max_records, n_ticks):
            yield batch.ndjson

    def records_ndjson(self, n_records: int, max_records: int = 500) -> list[tuple[SimulatedVehicle, bytes]]:
        """Exactly ``n_records`` records as NDJSON batches, driving all vehicles in step (for benchmarks).

        Batches of one vehicle come in order; batches of different vehicles are interleaved.

        Raises:
            ValueError: the fleet is empty, or ``max_records`` is not positive.
        """
        if not self.vehicles or max_records < 1:
            raise ValueError("records_ndjson needs at least one vehicle and max_records >= 1")
        streams = list(self._streams.values())
        pending: list[list[dict[str, Any]]] = [[] for _ in streams]
        out: list[tuple[SimulatedVehicle, bytes]] = []
        produced = 0
        while produced < n_records:
            for index, stream in enumerate(streams):
                records = stream.next_tick()
                if produced + len(records) >= n_records:
                    records = records[: n_records - produced]
                produced += len(records)
                queue = pending[index]
                queue.extend(records)
                if len(queue) >= max_records:
                    out.append((stream.vehicle, encode_ndjson(queue[:max_records])))
                    del queue[:max_records]
                if produced >= n_records:
                    break
        for stream, queue in zip(streams, pending, strict=True):
            for offset in range(0, len(queue), max_records):
                out.append((stream.vehicle, encode_ndjson(queue[offset : offset + max_records])))
        return out
