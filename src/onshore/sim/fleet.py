"""A simulated fleet: vehicles driving synthetic routes and the change-only signal records they send.

Every value here is synthetic and deterministic from a seed: VINs (``vins``), vehicles (``vehicle``), what they
send (``signals``). Records have the ingest API's shape ``{"msg_id", "ts", "signal", "value"}``; like
fleet-telemetry, a vehicle sends a signal only when its value changed, and may resend an earlier record
(``duplicate_rate``) or send a vendor signal no rule pack knows (``unknown_signal_rate``).
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from onshore.sim.signals import DESTINATION, GEAR, GEAR_VALUES, LOCATION, SIGNAL_NAMES, UNKNOWN_SIGNALS
from onshore.sim.vehicle import SimulatedVehicle
from onshore.sim.vins import synthetic_vin

RESEND_WINDOW = 32


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
