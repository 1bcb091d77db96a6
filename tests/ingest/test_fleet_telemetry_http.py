"""POST /v1/ingest/fleet-telemetry over the real app: the same data sent as onshore JSON, as fleet-telemetry
protobuf and as fleet-telemetry JSON stores the same rows; gateways speak only for the vehicles registered to
them; resends, alerts, errors, connectivity, and requests for many vehicles.

Each way of sending goes to its own vehicle (four synthetic VINs), so that the rows can be compared vehicle by
vehicle: everything but the vehicle, its owner and the row bookkeeping (ids, arrival time, ledger index) must be
equal, values compared opened (decrypted).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from onshore.ingest.fleet_telemetry.schema import RecordType
from tests.conftest import CN_VIN, CN_VIN_2, EU_VIN, Workspace, auth
from tests.ingest import ft_payloads as ft

CN_VIN_3 = "LSVM0TEST00000003"
CN_VIN_4 = "LSVM0TEST00000004"
PATH = "/v1/ingest/fleet-telemetry"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
ROW_FIELDS = ("msg_id", "ts_ms", "signal", "value", "categories", "tags", "purpose", "rule_id", "origin", "zone")


def _grant_all(ws: Workspace, vin: str, market: str = "CN") -> None:
    owner = ws.runtime.vehicles.owner_of(vin, market)
    grants = [
        ("navigation", "separate"),
        ("infotainment", "ordinary"),
        ("vehicle_services", "ordinary"),
        ("charging", "ordinary"),
    ]
    for purpose, level in grants:
        ws.runtime.consents.grant(owner, purpose, level, "7d", actor_role="officer")


def _rows(ws: Workspace, vin: str, market: str = "CN") -> list[tuple[Any, ...]]:
    region, ref = ws.runtime.vehicles.ref_for(vin, market)
    rows = region.open_rows([r for r in region.store.query_records(limit=1000) if r["vehicle_ref"] == ref])
    return sorted(tuple(row[f] for f in ROW_FIELDS) for row in rows)


def _quirky_datums() -> list[ft.Datum]:
    """One datum of each kind a vehicle sends, in the forms firmware really uses (numbers as strings, the
    location string, invalid, enums, doors, a time, tyres)."""
    return [
        ft.datum("VehicleSpeed", "string_value", "42.5"),  # untyped firmware: a number as a string
        ft.datum("Odometer", "long_value", 123456),
        ft.datum("Soc", "float_value", 77.5),
        ft.datum("BatteryLevel", "float_value", 0.1),  # not exact in 32 bits
        ft.datum("PackVoltage", "double_value", 398.25),
        ft.datum("Location", "string_value", "(26.647012 N, 106.630245 E)"),
        ft.datum("DestinationLocation", "location_value", (26.5, 106.7)),
        ft.datum("Gear", "shift_state_value", "ShiftStateD"),
        ft.datum("FdWindow", "window_state_value", "WindowStateClosed"),
        ft.datum("DoorState", "door_value", {"DriverFront": True, "TrunkRear": True}),
        ft.datum("ScheduledDepartureTime", "time_value", (7, 30, 0)),
        ft.datum("TpmsHardWarnings", "tire_location_value", {"front_left": True}),
        ft.datum("InsideTemp", "invalid", True),
        ft.datum("Locked", "boolean_value", True),
        ft.datum("MediaNowPlayingArtist", "string_value", "Invented Band"),
        ft.datum("SentryMode", "sentry_mode_state_value", "SentryModeStateArmed"),
    ]


def _as_onshore_json(created_ms: int) -> list[dict[str, Any]]:
    """The same data as an onshore JSON batch, written by hand the way an integrator would."""
    values: dict[str, Any] = {
        "VehicleSpeed": 42.5,
        "Odometer": 123456,
        "Soc": 77.5,
        "BatteryLevel": 0.1,
        "PackVoltage": 398.25,
        "Location": {"latitude": 26.647012, "longitude": 106.630245},
        "DestinationLocation": {"latitude": 26.5, "longitude": 106.7},
        "Gear": "ShiftStateD",
        "FdWindow": "WindowStateClosed",
        "DoorState": {
            "DriverFront": True,
            "DriverRear": False,
            "PassengerFront": False,
            "PassengerRear": False,
            "TrunkFront": False,
            "TrunkRear": True,
        },
        "ScheduledDepartureTime": "07:30:00",
        "TpmsHardWarnings": {"FrontLeft": True, "FrontRight": False, "RearLeft": False, "RearRight": False},
        "InsideTemp": None,
        "Locked": True,
        "MediaNowPlayingArtist": "Invented Band",
        "SentryMode": "SentryModeStateArmed",
    }
    return [
        {"msg_id": f"V:{created_ms}:{field}", "ts": created_ms, "signal": field, "value": value}
        for field, value in values.items()
    ]


def test_the_same_data_stores_the_same_rows_by_every_path(workspace: Workspace, client: TestClient) -> None:
    ws = workspace
    vehicle_token = ws.runtime.vehicles.add(CN_VIN, "CN").token
    for vin in (CN_VIN_2, CN_VIN_3, CN_VIN_4):
        ws.runtime.vehicles.add(vin, "CN", gateway="gateway")
    for vin in (CN_VIN, CN_VIN_2, CN_VIN_3, CN_VIN_4):
        _grant_all(ws, vin)
    gateway = auth(ws.token("gateway"))
    created = ft.now_ms() - 5000
    # 1. onshore JSON, from the vehicle's own token
    r1 = client.post("/v1/ingest", json=_as_onshore_json(created), headers=auth(vehicle_token))
    # 2. fleet-telemetry protobuf, from the gateway
    message = ft.payload(_quirky_datums(), vin=CN_VIN_2, created_ms=created)
    r2 = client.post(PATH, params={"type": "V"}, content=message.SerializeToString(), headers={**gateway, **PROTOBUF})
    # 3. fleet-telemetry JSON (protobuf's JSON mapping, as upstream's JSON dispatchers write it), from the gateway
    as_json = ft.as_json(ft.payload(_quirky_datums(), vin=CN_VIN_3, created_ms=created))
    r3 = client.post(PATH, content=orjson.dumps(as_json), headers={**gateway, **JSON})
    # 4. onshore JSON from the gateway, naming the vehicle in a header
    r4 = client.post("/v1/ingest", json=_as_onshore_json(created), headers={**gateway, "Onshore-Vin": CN_VIN_4})
    for response in (r1, r2, r3, r4):
        assert response.status_code == 200, response.text
    assert r1.json()["accepted"] == r2.json()["accepted"] == r3.json()["accepted"] == r4.json()["accepted"] == 16
    assert r2.json()["batches"][0]["messages"] == [0] and r2.json()["batches"][0]["region"] == "cn"
    reference = _rows(ws, CN_VIN)
    assert len(reference) == 16
    assert _rows(ws, CN_VIN_2) == reference
    assert _rows(ws, CN_VIN_3) == reference
    assert _rows(ws, CN_VIN_4) == reference
    stored = {row[2]: row[3] for row in reference}
    assert orjson.loads(stored["VehicleSpeed"]) == 42.5 and orjson.loads(stored["BatteryLevel"]) == 0.1
    assert orjson.loads(stored["Location"]) == {"latitude": 26.647, "longitude": 106.6302}  # coarsened
    assert orjson.loads(stored["InsideTemp"]) is None and orjson.loads(stored["Gear"]) == "ShiftStateD"


def test_a_resend_is_stored_once(workspace: Workspace, client: TestClient) -> None:
    workspace.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    headers = {**auth(workspace.token("gateway")), **PROTOBUF}
    created = ft.now_ms() - 2000
    speed = [ft.datum("VehicleSpeed", "double_value", 10.0), ft.datum("Odometer", "long_value", 5)]
    first = client.post(
        PATH, content=ft.payload(speed, vin=CN_VIN, created_ms=created).SerializeToString(), headers=headers
    )
    again = ft.payload(speed, vin=CN_VIN, created_ms=created, resend=True).SerializeToString()
    second = client.post(PATH, content=again, headers=headers)
    assert (first.json()["accepted"], first.json()["duplicate"]) == (2, 0)
    assert (second.json()["accepted"], second.json()["duplicate"]) == (0, 2)
    assert workspace.runtime.regions["cn"].store.count_records() == 2


def test_a_gateway_speaks_only_for_vehicles_registered_to_it(workspace: Workspace, client: TestClient) -> None:
    ws = workspace
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    ws.runtime.vehicles.add(CN_VIN_2, "CN")  # registered, but to no gateway
    headers = {**auth(ws.token("gateway")), **PROTOBUF}
    speed = [ft.datum("VehicleSpeed", "double_value", 10.0)]
    assert (
        client.post(PATH, content=ft.payload(speed, vin=CN_VIN).SerializeToString(), headers=headers).status_code == 200
    )
    refused = client.post(PATH, content=ft.payload(speed, vin=CN_VIN_2).SerializeToString(), headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "vehicle_not_registered"
    assert CN_VIN_2 not in refused.text
    ws.runtime.vehicles.assign(CN_VIN_2, "gateway")
    assert (
        client.post(PATH, content=ft.payload(speed, vin=CN_VIN_2).SerializeToString(), headers=headers).status_code
        == 200
    )
    ws.runtime.vehicles.revoke(CN_VIN_2)
    revoked = client.post(
        PATH, content=ft.payload(speed, vin=CN_VIN_2, created_ms=ft.now_ms() - 10).SerializeToString(), headers=headers
    )
    assert revoked.status_code == 403
    ws.runtime.vehicles.assign(CN_VIN, None)
    unassigned = client.post(
        PATH, content=ft.payload(speed, vin=CN_VIN, created_ms=ft.now_ms() - 20).SerializeToString(), headers=headers
    )
    assert unassigned.status_code == 403
    assert ws.runtime.regions["cn"].store.count_records() == 2


def test_the_market_comes_from_the_registry_never_from_the_payload(workspace: Workspace, client: TestClient) -> None:
    """One gateway request for a CN and an EU vehicle: each vehicle's records land in its own region, as the
    registry says, whatever the request; every vehicle is its own batch."""
    ws = workspace
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    ws.runtime.vehicles.add(EU_VIN, "EU", gateway="gateway")
    ws.runtime.consents.grant(
        ws.runtime.vehicles.owner_of(EU_VIN, "EU"), "vehicle_services", "ordinary", "7d", actor_role="officer"
    )
    created = ft.now_ms() - 3000
    lines = [
        ft.as_json(ft.payload([ft.datum("VehicleSpeed", "double_value", 1.0)], vin=CN_VIN, created_ms=created)),
        ft.as_json(ft.payload([ft.datum("VehicleSpeed", "double_value", 2.0)], vin=EU_VIN, created_ms=created)),
        ft.as_json(ft.payload([ft.datum("Odometer", "double_value", 3.0)], vin=CN_VIN, created_ms=created + 1)),
    ]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    headers = {**auth(ws.token("gateway")), "Content-Type": "application/x-ndjson"}
    response = client.post(PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["messages"] == 3 and answer["accepted"] == 3
    assert [(b["region"], b["messages"], b["accepted"]) for b in answer["batches"]] == [
        ("cn", [0, 2], 2),
        ("eu", [1], 1),
    ]
    assert ws.runtime.regions["cn"].store.origins() == {"CN": 2}
    assert ws.runtime.regions["eu"].store.origins() == {"EU": 1}


def test_one_vehicle_s_refused_values_stop_the_request_and_a_resend_completes_it(
    workspace: Workspace, client: TestClient
) -> None:
    ws = workspace
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    ws.runtime.vehicles.add(CN_VIN_2, "CN", gateway="gateway")
    created = ft.now_ms() - 3000
    good = ft.as_json(ft.payload([ft.datum("VehicleSpeed", "double_value", 1.0)], vin=CN_VIN, created_ms=created))
    bad = ft.as_json(ft.payload([ft.datum("VehicleSpeed", "string_value", "fast")], vin=CN_VIN_2, created_ms=created))
    headers = {**auth(ws.token("gateway")), **JSON}
    refused = client.post(PATH, content=orjson.dumps([good, bad]), headers=headers)
    assert refused.status_code == 422, refused.text
    assert "the 1 batches before it were stored" in refused.json()["error"]["message"]
    fixed = ft.as_json(ft.payload([ft.datum("VehicleSpeed", "double_value", 2.0)], vin=CN_VIN_2, created_ms=created))
    again = client.post(PATH, content=orjson.dumps([good, fixed]), headers=headers).json()
    assert (again["accepted"], again["duplicate"]) == (1, 1)


@pytest.mark.parametrize("form", ["protobuf", "json"])
def test_alerts_errors_and_connectivity_become_records(workspace: Workspace, client: TestClient, form: str) -> None:
    ws = workspace
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    _grant_all(ws, CN_VIN)
    t = ft.now_ms() - 60_000
    messages = {
        RecordType.ALERTS: ft.alerts(
            CN_VIN, t, [("BMS_a066_SW_Low_Voltage", [1, 2], t - 1000, None), ("DI_a175", [2], t - 900, t - 100)]
        ),
        RecordType.ERRORS: ft.errors(CN_VIN, t, [("NotifyError", "queue full", {"field": "VehicleSpeed"})]),
        RecordType.CONNECTIVITY: ft.connectivity(CN_VIN, t, status=1),
    }
    gateway = auth(ws.token("gateway"))
    for kind, message in messages.items():
        if form == "protobuf":
            response = client.post(
                PATH, params={"type": kind.value}, content=message.SerializeToString(), headers={**gateway, **PROTOBUF}
            )
        else:  # the record type from upstream's txtype header this time
            response = client.post(
                PATH, content=orjson.dumps(ft.as_json(message)), headers={**gateway, **JSON, "txtype": kind.value}
            )
        assert response.status_code == 200, response.text
        assert response.json()["record_type"] == kind.value
    rows = {row[2]: [] for row in _rows(ws, CN_VIN)}
    for row in _rows(ws, CN_VIN):
        rows[row[2]].append(orjson.loads(row[3]))
    assert sorted(rows["VehicleAlert"], key=lambda a: a["name"]) == [
        {
            "name": "BMS_a066_SW_Low_Voltage",
            "audiences": ["Customer", "Service"],
            "started_at": t - 1000,
            "ended_at": None,
        },
        {"name": "DI_a175", "audiences": ["Service"], "started_at": t - 900, "ended_at": t - 100},
    ]
    assert rows["VehicleError"] == [{"name": "NotifyError", "body": "queue full", "tags": {"field": "VehicleSpeed"}}]
    assert rows["VehicleConnectivity"] == [{"connection_id": "c-1", "status": "CONNECTED", "network_interface": "wifi"}]
    # an alert that ends later is a new record; the same alert sent again is not
    ended = ft.alerts(CN_VIN, t + 10, [("BMS_a066_SW_Low_Voltage", [1, 2], t - 1000, t + 5)])
    repeat = client.post(
        PATH,
        params={"type": "alerts"},
        content=messages[RecordType.ALERTS].SerializeToString(),
        headers={**gateway, **PROTOBUF},
    )
    update = client.post(
        PATH, params={"type": "alerts"}, content=ended.SerializeToString(), headers={**gateway, **PROTOBUF}
    )
    assert repeat.json()["duplicate"] == 2 and update.json()["accepted"] == 1


def test_http_basic_credentials_carry_the_gateway_token(workspace: Workspace, client: TestClient) -> None:
    """fleet-telemetry's HTTP dispatcher sets no header of its own: its address carries NAME:TOKEN@host."""
    workspace.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    basic = base64.b64encode(f"gateway:{workspace.token('gateway')}".encode()).decode()
    body = ft.payload([ft.datum("VehicleSpeed", "double_value", 3.0)], vin=CN_VIN).SerializeToString()
    ok = client.post(
        PATH,
        params={"namespace": "cn", "type": "V"},
        content=body,
        headers={"Authorization": f"Basic {basic}", **PROTOBUF},
    )
    assert ok.status_code == 200, ok.text
    wrong = base64.b64encode(b"gateway:ons_not-the-token").decode()
    assert client.post(PATH, content=body, headers={"Authorization": f"Basic {wrong}", **PROTOBUF}).status_code == 401
    # only this route takes basic credentials
    assert client.post("/v1/ingest", content=b"[]", headers={"Authorization": f"Basic {basic}"}).status_code == 401


def test_a_vehicle_may_send_its_own_records_without_a_vin(workspace: Workspace, client: TestClient) -> None:
    token = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    body = ft.payload([ft.datum("VehicleSpeed", "double_value", 3.0)], vin="").SerializeToString()
    named = ft.payload([ft.datum("Odometer", "double_value", 4.0)], vin=CN_VIN).SerializeToString()
    assert client.post(PATH, content=body, headers={**auth(token), **PROTOBUF}).json()["accepted"] == 1
    assert client.post(PATH, content=named, headers={**auth(token), **PROTOBUF}).json()["accepted"] == 1
    # a vehicle is not a gateway: /v1/ingest with another vehicle's VIN is refused
    other = client.post("/v1/ingest", json=[], headers={**auth(token), "Onshore-Vin": CN_VIN_2})
    assert other.status_code == 403 and other.json()["error"]["code"] == "vehicle_not_registered"


def test_a_request_as_upstream_s_dispatcher_posts_it(workspace: Workspace, client: TestClient) -> None:
    """The record type in the txtype header, the VIN in the vin header, the JSON form without a vin of its own."""
    workspace.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    _grant_all(workspace, CN_VIN)  # connection events are personal data under cn-auto
    message = ft.as_json(ft.connectivity("", ft.now_ms() - 1000, status=2))
    del message["vin"]
    headers = {**auth(workspace.token("gateway")), **JSON, "txtype": "connectivity", "vin": CN_VIN, "txid": "t-1"}
    response = client.post(PATH, params={"namespace": "cn"}, content=orjson.dumps(message), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["record_type"] == "connectivity" and response.json()["accepted"] == 1
    (row,) = _rows(workspace, CN_VIN)
    assert row[2] == "VehicleConnectivity" and orjson.loads(row[3])["status"] == "DISCONNECTED"
