"""`onshore mqtt` against the real Mosquitto: fleet-telemetry dispatcher messages and onshore batches store the rows
of the onshore JSON path; bad messages are counted, reported and acknowledged, and never block the next one;
two subscribers of one share group split the messages; a database that is down holds the acknowledgement back.

Each test takes a topic root of its own, so tests (and concurrent runs) never read each other's messages.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from onshore import clock
from onshore.ingest.fleet_telemetry.schema import RecordType
from onshore.metrics import Metrics
from tests.conftest import CN_VIN, CN_VIN_2, PG_ADMIN_URL, Workspace, auth
from tests.ingest import ft_payloads as ft
from tests.ingest.mqtt_support import (
    dispatch,
    listening,
    metric,
    mqtt_settings,
    publish,
    publisher,
    subscribed,
    unique_root,
    wait_for,
)
from tests.ingest.test_fleet_telemetry_http import _as_onshore_json, _grant_all, _quirky_datums, _rows

pytestmark = pytest.mark.services
CN_VIN_3 = "LSVM0TEST00000003"
FT_PATH = "/v1/ingest/fleet-telemetry"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _event_messages(vin: str, t: int) -> dict[RecordType, Any]:
    """Alerts, an error and a connectivity event, in whole seconds (the dispatcher writes no milliseconds)."""
    connectivity = ft.connectivity(vin, t, status=1)
    connectivity.network_interface = ""  # the dispatcher does not publish it
    return {
        RecordType.ALERTS: ft.alerts(
            vin, t, [("BMS_a066_SW_Low_Voltage", [1, 2], t - 10_000, None), ("DI_a175", [2], t - 9_000, t - 1_000)]
        ),
        RecordType.ERRORS: ft.errors(vin, t, [("NotifyError", "queue full", {"field": "VehicleSpeed"})]),
        RecordType.CONNECTIVITY: connectivity,
    }


def test_dispatcher_messages_and_the_batch_topic_store_the_rows_of_the_onshore_json_path(
    workspace: Workspace, client: TestClient
) -> None:
    ws = workspace
    root = unique_root()
    settings = mqtt_settings(ws.config, root)
    vehicle_token = ws.runtime.vehicles.add(CN_VIN, "CN").token
    for vin in (CN_VIN_2, CN_VIN_3):
        ws.runtime.vehicles.add(vin, "CN", gateway="gateway")
    for vin in (CN_VIN, CN_VIN_2, CN_VIN_3):
        _grant_all(ws, vin)
    created = (ft.now_ms() // 1000 + 1) * 1000  # whole seconds, after the consents were given
    # the reference: onshore JSON and fleet-telemetry protobuf over HTTP, from the vehicle's own token
    headers = auth(vehicle_token)
    assert client.post("/v1/ingest", json=_as_onshore_json(created), headers=headers).status_code == 200
    for kind, message in _event_messages(CN_VIN, created).items():
        sent = client.post(
            FT_PATH, params={"type": kind.value}, content=message.SerializeToString(), headers={**headers, **PROTOBUF}
        )
        assert sent.status_code == 200, sent.text
    reference = _rows(ws, CN_VIN)
    # the same data over MQTT: the dispatcher's messages for CN_VIN_2, one onshore batch for CN_VIN_3
    base = f"{root}/gateway"
    messages = dispatch(RecordType.V, ft.payload(_quirky_datums(), vin=CN_VIN_2, created_ms=created), base)
    for kind, message in _event_messages(CN_VIN_2, created).items():
        messages += dispatch(kind, message, base)
    assert len(messages) == 16 + 2 + 2 + 1 + 1  # alerts: each name's current state and its history
    messages.append((f"{base}/onshore/{CN_VIN_3}/batch", orjson.dumps(_as_onshore_json(created))))
    # a per-field message carries no time: it is stamped on arrival, here at the payload's time
    with clock.frozen(created), subscribed(settings, ws.runtime) as subscriber, publisher() as pub:
        for topic, payload in messages:
            publish(pub, topic, payload)
        wait_for(lambda: len(_rows(ws, CN_VIN_2)) == 20 and len(_rows(ws, CN_VIN_3)) == 16, what="the rows")
    by_mqtt = _rows(ws, CN_VIN_2)
    is_v = {f"V:{created}:{record['signal']}" for record in _as_onshore_json(created)}
    assert [r for r in by_mqtt if not r[0].startswith("V:")] == [r for r in reference if r[0] not in is_v]
    v_rows = [r for r in reference if r[0] in is_v]
    assert sorted(r[1:] for r in by_mqtt if r[0].startswith("V:")) == [r[1:] for r in v_rows]
    assert {r[0] for r in by_mqtt if r[0].startswith("V:")} == {f"{m}:{subscriber.client_id}" for m in is_v}
    assert _rows(ws, CN_VIN_3) == v_rows
    duplicate_alerts = metric(ws.runtime.metrics, "onshore_records_dropped_total", region="cn", reason="duplicate")
    assert duplicate_alerts == 2  # an alert's current state repeats its history: the same record, stored once


def test_bad_messages_are_counted_reported_and_acknowledged_and_the_next_good_one_is_stored(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace
    root = unique_root()
    # one flush for all of them: the bad value must be told apart from the good ones batched with it
    settings = mqtt_settings(ws.config, root, max_message_bytes=1024, flush_ms=1500)
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    ws.runtime.vehicles.add(CN_VIN_2, "CN")  # registered, but to no gateway
    base = f"{root}/gateway"
    t = ft.now_ms() - 1000
    bad = [
        (f"{base}/{CN_VIN}/v/VehicleSpeed", b"\x00\xff garbage", "bad_request"),
        (f"{base}/{CN_VIN}/v/NoSuchField", b"1", "validation_failed"),
        (f"{base}/{CN_VIN_2}/v/VehicleSpeed", b"1.0", "vehicle_not_registered"),
        (f"{base}/{CN_VIN}/v/VehicleName", orjson.dumps("x" * 2000), "payload_too_large"),
        (f"{base}/onshore/v/VehicleSpeed", b"1", "bad_request"),  # no shape of the layout
        (f"{root}/nosuchgateway/{CN_VIN}/v/VehicleSpeed", b"1", "forbidden"),
        (f"{base}/{CN_VIN}/connectivity", orjson.dumps({"Status": "MAYBE"}), "validation_failed"),
        (f"{base}/{CN_VIN}/v/VehicleSpeed", orjson.dumps("fast"), "validation_failed"),  # refused by classify
        (f"{base}/onshore/{CN_VIN}/batch", _batch("m", 1, 1.0), "validation_failed"),  # a time before 2000
    ]
    good = [(f"{base}/{CN_VIN}/v/Odometer", b"1234"), (f"{base}/onshore/{CN_VIN}/batch", _batch("ok", t, 42.5))]
    metrics = ws.runtime.metrics
    with (
        caplog.at_level(logging.INFO, logger="onshore.mqtt"),
        listening(f"{base}/onshore/errors") as reports,
        subscribed(settings, ws.runtime),
        publisher() as pub,
    ):
        publish(pub, *good[0])
        for i, (topic, payload, _code) in enumerate(bad):
            publish(pub, topic, payload, correlation=f"bad-{i}".encode())
        publish(pub, *good[1])
        wait_for(lambda: ws.runtime.regions["cn"].store.count_records() == 2, what="the good records")
        wait_for(lambda: len(reports) == len(bad) - 1, what="the reports")
    refused = sum(metric(metrics, "onshore_mqtt_messages_total", kind=k, outcome="refused") for k in _KINDS)
    assert refused == len(bad)
    assert metric(metrics, "onshore_mqtt_messages_total", kind="v", outcome="processed") == 1
    assert metric(metrics, "onshore_mqtt_messages_total", kind="batch", outcome="processed") == 1
    assert metric(metrics, "onshore_mqtt_unacknowledged") == 0
    codes = [code for _t, _p, code in bad]
    for code in set(codes):
        status = {"bad_request": "400", "validation_failed": "422", "payload_too_large": "413"}.get(code, "403")
        assert metric(metrics, "onshore_refusals_total", status=status, code=code) == codes.count(code), code
    answers = sorted((orjson.loads(r) for r in reports), key=lambda r: r["correlation_data"])
    expected = [(f"bad-{i}".encode().hex(), code) for i, (_, _, code) in enumerate(bad) if code != "forbidden"]
    assert [(a["correlation_data"], a["code"]) for a in answers] == sorted(expected)
    assert all(CN_VIN not in r.decode() and CN_VIN_2 not in r.decode() for r in reports)
    assert "refused a v message of gateway gateway: validation_failed" in caplog.text
    assert CN_VIN not in caplog.text and CN_VIN_2 not in caplog.text and "garbage" not in caplog.text


_KINDS = ("v", "alerts_current", "alerts_history", "errors", "connectivity", "batch", "unknown")


def _batch(msg_id: str, ts: int, speed: float) -> bytes:
    return orjson.dumps([{"msg_id": msg_id, "ts": ts, "signal": "VehicleSpeed", "value": speed}])


def test_two_subscribers_of_one_share_group_split_the_messages_without_duplicates(workspace: Workspace) -> None:
    ws = workspace
    root = unique_root()
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    first, second = Metrics(), Metrics()
    t = ft.now_ms() - 10_000
    n = 200
    with (
        subscribed(mqtt_settings(ws.config, root, client_id=f"{root}-a", flush_ms=20), ws.runtime, metrics=first),
        subscribed(mqtt_settings(ws.config, root, client_id=f"{root}-b", flush_ms=20), ws.runtime, metrics=second),
        publisher() as pub,
    ):
        for i in range(n):
            publish(pub, f"{root}/gateway/onshore/{CN_VIN}/batch", _batch(f"m{i}", t + i, float(i)))
        wait_for(lambda: ws.runtime.regions["cn"].store.count_records() == n, what="every record")
    took = [metric(m, "onshore_mqtt_messages_total", kind="batch", outcome="processed") for m in (first, second)]
    assert sum(took) == n and min(took) > 0, took
    assert metric(ws.runtime.metrics, "onshore_records_dropped_total", region="cn", reason="duplicate") == 0


def test_a_flooding_vehicle_is_refused_over_its_rate_and_the_others_are_stored(workspace: Workspace) -> None:
    ws = workspace
    root = unique_root()
    # a rate no vehicle reaches in this test's seconds, so the burst alone decides
    settings = mqtt_settings(ws.config, root, vehicle_rate_per_s=0.001, vehicle_burst=5, flush_ms=20)
    for vin in (CN_VIN, CN_VIN_2):
        ws.runtime.vehicles.add(vin, "CN", gateway="gateway")
    t = ft.now_ms() - 10_000
    base = f"{root}/gateway/onshore"
    metrics = ws.runtime.metrics
    with listening(f"{root}/gateway/onshore/errors") as reports, subscribed(settings, ws.runtime), publisher() as pub:
        for i in range(20):  # the flood
            publish(pub, f"{base}/{CN_VIN}/batch", _batch(f"f{i}", t + i, float(i)))
        for i in range(5):  # another vehicle of the same gateway, after it
            publish(pub, f"{base}/{CN_VIN_2}/batch", _batch(f"o{i}", t + i, float(i)))
        wait_for(lambda: ws.runtime.regions["cn"].store.count_records() == 10, what="the records within the rate")
        wait_for(lambda: len(reports) == 15, what="the reports of the refused messages")
    assert metric(metrics, "onshore_refusals_total", status="429", code="rate_limited") == 15
    assert metric(metrics, "onshore_mqtt_messages_total", kind="batch", outcome="processed") == 10
    assert metric(metrics, "onshore_mqtt_unacknowledged") == 0
    answer = orjson.loads(reports[0])
    assert answer["code"] == "rate_limited" and "mqtt.vehicle_rate_per_s" in answer["message"]
    assert all(CN_VIN not in r.decode() for r in reports)


@pytest.mark.parametrize("record_backend", ["postgresql"], indirect=True)
def test_a_database_that_is_down_holds_the_acknowledgement_until_it_is_back(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace
    root = unique_root()
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    database = ws.settings.regions["cn"].record_store.rsplit("/", 1)[1]
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    metrics = ws.runtime.metrics
    with (
        caplog.at_level(logging.WARNING, logger="onshore.mqtt"),
        subscribed(mqtt_settings(ws.config, root, flush_ms=20), ws.runtime) as subscriber,
        publisher() as pub,
        psycopg.connect(admin, autocommit=True) as conn,
    ):
        conn.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        try:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [database])
            publish(pub, f"{root}/gateway/onshore/{CN_VIN}/batch", _batch("down", ft.now_ms() - 1000, 1.0))
            wait_for(lambda: "storage_unavailable" in caplog.text, what="a transient failure")
            wait_for(lambda: "trying again" in caplog.text.split("storage_unavailable", 1)[1], what="a retry")
            assert metric(metrics, "onshore_mqtt_unacknowledged") == 1
        finally:
            conn.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        wait_for(lambda: metric(metrics, "onshore_mqtt_unacknowledged") == 0, what="the acknowledgement")
        assert subscriber.connected.is_set()
    assert ws.runtime.regions["cn"].store.count_records() == 1
    assert metric(metrics, "onshore_mqtt_messages_total", kind="batch", outcome="processed") == 1
    assert sum(metric(metrics, "onshore_mqtt_messages_total", kind=k, outcome="refused") for k in _KINDS) == 0
