"""The fleet simulator: deterministic, well-formed, change-only records on road-like synthetic routes."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import shapely
from shapely.geometry import shape

from onshore.sim import (
    CITIES,
    FleetSimulator,
    SimulatedVehicle,
    encode_ndjson,
    make_fleet,
    run_fleet_http,
    synthetic_vin,
    vin_is_well_formed,
)
from onshore.sim.routes import DEFAULT_ZONES_PATH
from onshore.sim.signals import MEDIA_TRACKS, SIGNAL_NAMES, UNKNOWN_SIGNALS

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
KIND_BY_NAME = {name: position for names in SIGNAL_NAMES.values() for position, name in enumerate(names)}
SPEED, ODOMETER, SOC, LOCATION, HEADING, GEAR, DESTINATION, SEAT, ARTIST, TITLE, VOLTAGE, TEMPERATURE = range(12)


def drive(simulator: FleetSimulator, n_ticks: int) -> dict[str, list[dict[str, Any]]]:
    """Every vehicle's records over ``n_ticks`` ticks, by VIN, in the order they were produced."""
    by_vin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _ in range(n_ticks):
        for vehicle, records in simulator.tick():
            by_vin[vehicle.vin].extend(records)
    return by_vin


def without_resends(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    originals = []
    for record in records:
        if record["msg_id"] not in seen:
            seen.add(record["msg_id"])
            originals.append(record)
    return originals


@pytest.fixture(scope="module")
def fleet_run() -> tuple[list[SimulatedVehicle], dict[str, list[dict[str, Any]]]]:
    vehicles = make_fleet(40, seed=2026)
    simulator = FleetSimulator(vehicles, START_MS, unknown_signal_rate=0.01, duplicate_rate=0.02)
    return vehicles, drive(simulator, 1200)


def test_same_seed_gives_the_same_records_and_another_seed_does_not() -> None:
    def batches(seed: int) -> list[bytes]:
        simulator = FleetSimulator(make_fleet(12, seed), START_MS, unknown_signal_rate=0.02, duplicate_rate=0.02)
        return [body for _, body in simulator.records_ndjson(5_000, max_records=100)]

    assert batches(7) == batches(7)
    assert batches(7) != batches(8)


def test_a_vehicles_records_do_not_depend_on_the_rest_of_the_fleet() -> None:
    alone = make_fleet(5, seed=3)[2]
    in_fleet = make_fleet(5, seed=3)
    bodies_alone = list(FleetSimulator([alone], START_MS).batches(alone, 50, n_ticks=300))
    simulator = FleetSimulator(in_fleet, START_MS)
    simulator.tick()  # driving the fleet first moves every clock one tick ...
    bodies_in_fleet = list(simulator.batches(in_fleet[2], 50, n_ticks=299))
    first_tick = FleetSimulator([make_fleet(5, seed=3)[2]], START_MS).tick()[0][1]
    assert encode_ndjson(first_tick) + b"".join(bodies_in_fleet) == b"".join(bodies_alone)  # ... and no more


def test_vins_are_synthetic_well_formed_unique_and_say_their_market() -> None:
    vehicles = make_fleet(300, seed=5)
    vins = [vehicle.vin for vehicle in vehicles]
    assert len(set(vins)) == len(vins)
    for vehicle in vehicles:
        assert vin_is_well_formed(vehicle.vin)
        assert not set(vehicle.vin) & set("IOQ")
        assert vehicle.vin.startswith({"CN": "LSYN", "EU": "WSYN"}[vehicle.market])
        assert CITIES[vehicle.city.name].market == vehicle.market
    assert {vehicle.market for vehicle in vehicles} == {"CN", "EU"}
    assert not vin_is_well_formed("LSYN0000000000000")  # wrong check digit


def test_a_vehicle_refuses_a_malformed_vin_or_a_city_of_another_market() -> None:
    vin = synthetic_vin("EU", random.Random(1))
    with pytest.raises(ValueError, match="not well formed"):
        SimulatedVehicle("LSIM0000000000001", "CN", "Beijing", 1)
    with pytest.raises(ValueError, match="market"):
        SimulatedVehicle(vin, "EU", "Beijing", 1)
    with pytest.raises(ValueError, match="Munich"):
        SimulatedVehicle(vin, "EU", "Atlantis", 1)
    with pytest.raises(ValueError, match="no sensitive zone"):
        SimulatedVehicle(vin, "EU", "Paris", 1, visits_zone=True)


def test_msg_ids_are_unique_per_vehicle_except_deliberate_resends(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    resends = 0
    for vehicle in vehicles:
        first_by_id: dict[str, dict[str, Any]] = {}
        for record in by_vin[vehicle.vin]:
            original = first_by_id.setdefault(record["msg_id"], record)
            if original is not record:
                assert record == original  # a resend repeats the record exactly
                resends += 1
    total = sum(len(records) for records in by_vin.values())
    assert 0.01 * total < resends < 0.04 * total

    plain = drive(FleetSimulator(make_fleet(10, seed=9), START_MS), 600)
    for records in plain.values():
        assert len({record["msg_id"] for record in records}) == len(records)


def test_msg_ids_differ_between_runs_that_start_at_different_times() -> None:
    vehicle = make_fleet(1, seed=4)[0]
    first = FleetSimulator([vehicle], START_MS).tick()[0][1]
    again = FleetSimulator([make_fleet(1, seed=4)[0]], START_MS + 1).tick()[0][1]
    assert not {record["msg_id"] for record in first} & {record["msg_id"] for record in again}


def test_every_record_is_well_formed_and_in_range(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    artists = {artist for artist, _ in MEDIA_TRACKS}
    titles = {title for _, title in MEDIA_TRACKS}
    for vehicle in vehicles:
        previous_ts = 0
        for record in without_resends(by_vin[vehicle.vin]):
            assert list(record) == ["msg_id", "ts", "signal", "value"]
            assert isinstance(record["msg_id"], str) and isinstance(record["ts"], int)
            assert START_MS <= previous_ts <= record["ts"] or previous_ts == 0
            previous_ts = record["ts"]
            value = record["value"]
            kind = KIND_BY_NAME.get(record["signal"])
            if kind is None:
                assert record["signal"] in UNKNOWN_SIGNALS
            elif kind in (LOCATION, DESTINATION):
                assert list(value) == ["latitude", "longitude"]
                assert -90.0 <= value["latitude"] <= 90.0 and -180.0 <= value["longitude"] <= 180.0
            elif kind == SPEED:
                assert 0.0 <= value <= 120.0
            elif kind == SOC:
                assert 0.0 <= value <= 100.0
            elif kind == HEADING:
                assert value in (0, 90, 180, 270)
            elif kind == GEAR:
                assert value in ("ShiftStateD", "ShiftStateP", 126, 127)
            elif kind == SEAT:
                assert isinstance(value, bool)
            elif kind in (ARTIST, TITLE):
                assert value in (artists if kind == ARTIST else titles)
            elif kind == VOLTAGE:
                assert 300.0 <= value <= 420.0
            elif kind == TEMPERATURE:
                assert -40.0 <= value <= 50.0
            else:
                assert kind == ODOMETER and value > 0.0


def test_only_changed_signals_are_sent_and_the_first_tick_sends_all(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    for vehicle in vehicles:
        records = without_resends(by_vin[vehicle.vin])
        first_ts = records[0]["ts"]
        assert {r["signal"] for r in records if r["ts"] == first_ts} >= set(SIGNAL_NAMES[vehicle.dialect])
        last_value: dict[str, Any] = {}
        for record in records:
            if record["signal"] in UNKNOWN_SIGNALS:
                continue
            assert last_value.get(record["signal"], object()) != record["value"], record
            last_value[record["signal"]] = record["value"]


def test_a_quiet_step_changes_no_reading() -> None:
    quiet = 0
    for vehicle in make_fleet(10, seed=12):
        before = vehicle.readings()
        for _ in range(1500):
            changed = vehicle.step(1.0)
            after = vehicle.readings()
            if not changed:
                quiet += 1
                assert after == before
            before = after
    assert quiet > 1000  # red lights and parking are common


def test_vehicles_drive_stop_and_charge_like_cars(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    speeds = [r["value"] for records in by_vin.values() for r in records if KIND_BY_NAME.get(r["signal"]) == SPEED]
    assert max(speeds) > 60.0 and speeds.count(0.0) > 50
    charging = draining = 0
    for records in by_vin.values():
        soc = [r["value"] for r in without_resends(records) if KIND_BY_NAME.get(r["signal"]) == SOC]
        charging += sum(later > earlier for earlier, later in zip(soc, soc[1:], strict=False))
        draining += sum(later < earlier for earlier, later in zip(soc, soc[1:], strict=False))
    assert charging > 0 and draining > 0
    assert {vehicle.dialect for vehicle in vehicles} == {"fleet_telemetry", "vss"}
    assert sum(vehicle.dialect == "vss" for vehicle in vehicles) < len(vehicles) / 2


def test_unknown_vendor_signals_come_only_when_asked(fleet_run) -> None:
    _, by_vin = fleet_run
    records = [r for rs in by_vin.values() for r in rs]
    unknown = sum(r["signal"] in UNKNOWN_SIGNALS for r in records)
    assert 0.005 * len(records) < unknown < 0.02 * len(records)
    plain = drive(FleetSimulator(make_fleet(10, seed=9), START_MS), 300)
    assert not any(r["signal"] in UNKNOWN_SIGNALS for rs in plain.values() for r in rs)


def zone_polygons() -> dict[str, shapely.Polygon]:
    collection = json.loads(DEFAULT_ZONES_PATH.read_text(encoding="utf-8"))
    return {f["properties"]["id"]: shape(f["geometry"]) for f in collection["features"]}


def locations(records: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [
        (r["value"]["longitude"], r["value"]["latitude"]) for r in records if KIND_BY_NAME.get(r["signal"]) == LOCATION
    ]


@pytest.mark.parametrize("city", ["Beijing", "Guiyang", "Shanghai"])
def test_a_zone_visitor_drives_through_its_sensitive_zone(city: str) -> None:
    rng = random.Random(city)
    vehicles = [SimulatedVehicle(synthetic_vin("CN", rng), "CN", city, seed, visits_zone=True) for seed in range(4)]
    by_vin = drive(FleetSimulator(vehicles, START_MS), 900)
    polygons = zone_polygons()
    for vehicle in vehicles:
        points = shapely.points(locations(by_vin[vehicle.vin]))
        assert shapely.contains(polygons[vehicle.zone_id], points).any(), vehicle


def test_a_share_of_the_cn_fleet_enters_a_zone_and_no_eu_vehicle_does(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    zones = shapely.union_all(list(zone_polygons().values()))
    entered = {v.vin for v in vehicles if shapely.contains(zones, shapely.points(locations(by_vin[v.vin]))).any()}
    cn = [v for v in vehicles if v.market == "CN"]
    assert 0 < len(entered) < len(cn)
    assert {v.vin for v in cn if v.zone_id} <= entered
    assert all(v.market == "CN" for v in vehicles if v.vin in entered)


def test_eu_vehicles_stay_in_the_eu_near_their_city(fleet_run) -> None:
    vehicles, by_vin = fleet_run
    eu = [vehicle for vehicle in vehicles if vehicle.market == "EU"]
    assert eu
    for vehicle in eu:
        for longitude, latitude in locations(by_vin[vehicle.vin]):
            assert 35.0 < latitude < 71.0 and -11.0 < longitude < 32.0
            east_m, north_m = vehicle.city.to_metres(latitude, longitude)
            assert (east_m**2 + north_m**2) ** 0.5 < 30_000.0


def test_200k_records_are_generated_as_ndjson_that_orjson_parses() -> None:
    # how fast is bench/ingest.py's business (speed is measured in benchmarks, never in timed tests)
    simulator = FleetSimulator(make_fleet(100, seed=1), START_MS, unknown_signal_rate=0.01, duplicate_rate=0.01)
    batches = simulator.records_ndjson(200_000, max_records=500)
    assert sum(body.count(b"\n") for _, body in batches) == 200_000
    last_ts: dict[str, int] = {}
    for vehicle, body in batches:
        assert body.endswith(b"\n")
        lines = body.splitlines()
        assert 0 < len(lines) <= 500
        records = [orjson.loads(line) for line in lines]
        assert {record["signal"] for record in records} <= set(KIND_BY_NAME) | set(UNKNOWN_SIGNALS)
        newest = max(record["ts"] for record in records)
        assert newest >= last_ts.get(vehicle.vin, 0)  # a vehicle's batches come in order
        last_ts[vehicle.vin] = newest


def test_batch_stream_flushes_by_size_by_ticks_and_at_the_end() -> None:
    vehicle = make_fleet(1, seed=21)[0]
    simulator = FleetSimulator([vehicle], START_MS, tick_s=0.5)
    by_size = list(simulator.batch_stream(vehicle, 7, n_ticks=200))
    assert all(batch.records == 7 for batch in by_size[:-1]) and 0 < by_size[-1].records <= 7
    by_ticks = list(simulator.batch_stream(vehicle, 1_000, n_ticks=40, flush_ticks=10))
    assert [batch.ready_at_ms for batch in by_ticks] == [START_MS + 500 * tick for tick in (209, 219, 229, 239)]
    assert encode_ndjson([]) == b""
    body = encode_ndjson([{"msg_id": "m-1", "ts": 1, "signal": "MediaNowPlayingTitle", "value": '},{"msg_id":'}])
    assert [orjson.loads(line) for line in body.splitlines()][0]["value"] == '},{"msg_id":'


class _CountingIngest(ThreadingHTTPServer):
    """A stand-in for onshore's ingest route that counts what arrives."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _IngestHandler)
        self.vin_by_token = {token: vin for vin, token in tokens.items()}
        self.lock = threading.Lock()
        self.msg_ids: dict[str, list[str]] = defaultdict(list)
        self.batch_sizes: list[int] = []
        self.connections: set[tuple[str, int]] = set()
        self.in_flight = self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _IngestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _CountingIngest

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        server = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        vin = server.vin_by_token.get(self.headers.get("Authorization", "").removeprefix("Bearer "))
        if self.path != "/v1/ingest" or self.headers.get("Content-Type") != "application/x-ndjson":
            return self._answer(415, {"error": {"code": "unsupported_media_type", "message": self.path}})
        if vin is None:
            return self._answer(401, {"error": {"code": "unauthorized", "message": "unknown token"}})
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        time.sleep(0.003)  # long enough for concurrent requests to overlap
        records = [orjson.loads(line) for line in body.splitlines()]
        with server.lock:
            server.in_flight -= 1
            server.connections.add(self.client_address)
            server.batch_sizes.append(len(records))
            seen = set(server.msg_ids[vin])
            duplicate = sum(record["msg_id"] in seen for record in records)
            dropped = sum("Media" in record["signal"] for record in records if record["msg_id"] not in seen)
            server.msg_ids[vin].extend(record["msg_id"] for record in records)
        counts = {"accepted": len(records) - duplicate - dropped, "duplicate": duplicate}
        self._answer(200, counts | {"dropped_no_consent": dropped})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        content = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def ingest_server() -> Iterator[_CountingIngest]:
    vehicles = make_fleet(8, seed=31)
    server = _CountingIngest({vehicle.vin: f"token-{index}" for index, vehicle in enumerate(vehicles)})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_run_fleet_http_sends_every_record_in_bounded_batches_with_each_vehicles_token(ingest_server) -> None:
    vehicles = make_fleet(8, seed=31)
    tokens = {vehicle.vin: f"token-{index}" for index, vehicle in enumerate(vehicles)}
    simulator = FleetSimulator(vehicles, START_MS, duplicate_rate=0.02)
    results = []
    summary = run_fleet_http(
        ingest_server.url, simulator, tokens, n_ticks=240, batch_size=40, concurrency=4, on_result=results.append
    )
    expected = FleetSimulator(make_fleet(8, seed=31), START_MS, duplicate_rate=0.02)
    for vehicle in expected.vehicles:
        sent = [
            orjson.loads(line)["msg_id"] for body in expected.batches(vehicle, 40, 240) for line in body.splitlines()
        ]
        assert ingest_server.msg_ids[vehicle.vin] == sent  # every record, in order, under its own token
    assert summary.requests == len(results) == len(ingest_server.batch_sizes) > 4 * 8
    assert summary.records_sent == sum(ingest_server.batch_sizes) == sum(r.records for r in results)
    assert max(ingest_server.batch_sizes) <= 40
    assert summary.accepted + summary.duplicate + summary.dropped_no_consent == summary.records_sent
    assert summary.duplicate > 0 and summary.dropped_no_consent > 0 and summary.errors_by_status == {}
    assert 2 <= ingest_server.max_in_flight <= 4
    assert len(ingest_server.connections) <= 4  # one keep-alive connection per worker


def test_run_fleet_http_counts_refused_batches_by_status(ingest_server) -> None:
    vehicles = make_fleet(8, seed=31)
    tokens = {vehicle.vin: f"token-{index}" for index, vehicle in enumerate(vehicles)}
    tokens[vehicles[0].vin] = "revoked"
    summary = run_fleet_http(ingest_server.url, FleetSimulator(vehicles, START_MS), tokens, n_ticks=30, batch_size=25)
    assert summary.errors_by_status.get(401, 0) >= 1
    assert summary.accepted + summary.dropped_no_consent < summary.records_sent


def test_run_fleet_http_stops_by_itself_when_the_server_is_gone() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    vehicles = make_fleet(4, seed=2)
    simulator = FleetSimulator(vehicles, START_MS)
    summary = run_fleet_http(
        f"http://127.0.0.1:{port}", simulator, {v.vin: "t" for v in vehicles}, duration_s=30.0, batch_size=5
    )
    assert summary.elapsed_s < 10.0
    assert summary.errors_by_status.get(0, 0) >= 5 and summary.accepted == 0


def test_run_fleet_http_respects_duration_and_realtime(ingest_server) -> None:
    vehicles = make_fleet(8, seed=31)
    tokens = {vehicle.vin: f"token-{index}" for index, vehicle in enumerate(vehicles)}
    simulator = FleetSimulator(vehicles, START_MS, tick_s=0.1)
    summary = run_fleet_http(
        ingest_server.url, simulator, tokens, duration_s=0.6, batch_size=1_000, flush_ticks=2, realtime=True
    )
    assert 0.3 <= summary.elapsed_s < 3.0
    assert summary.requests >= 8 and summary.errors_by_status == {}
    assert summary.records_sent <= 8 * 12 * 7  # paced: no more than 0.6 s of driving was sent
    with pytest.raises(ValueError, match="n_ticks or duration_s"):
        run_fleet_http(ingest_server.url, simulator, tokens)
    with pytest.raises(ValueError, match="no token"):
        run_fleet_http(ingest_server.url, simulator, {}, n_ticks=1)
