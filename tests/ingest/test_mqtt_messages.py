"""The MQTT adapter without a broker: which gateway a topic is, what each message becomes, what is refused."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from onshore.config import IngestSettings, MqttSettings, load_settings
from onshore.errors import ConfigError, InputError, PayloadTooLargeError, ValidationError
from onshore.ingest.fleet_telemetry.values import dispatcher_value
from onshore.ingest.mqtt.messages import ArrivalStamps, message_records
from onshore.ingest.mqtt.topics import MessageKind, TopicAddress, TopicLayout
from onshore.workspace import init_workspace
from tests.conftest import CN_VIN

LIMITS = IngestSettings()
LAYOUT = TopicLayout("fleet", {"tesla-cn/prod": "fleet-cn"})
T = 1_760_000_000_000


def test_the_level_after_the_root_names_the_gateway_and_a_configured_base_names_its_own() -> None:
    assert LAYOUT.parse(f"fleet/tsp-1/{CN_VIN}/v/VehicleSpeed") == TopicAddress(
        "fleet/tsp-1", "tsp-1", CN_VIN, MessageKind.V, "VehicleSpeed"
    )
    assert LAYOUT.parse(f"tesla-cn/prod/{CN_VIN}/alerts/BMS_a066/history") == TopicAddress(
        "tesla-cn/prod", "fleet-cn", CN_VIN, MessageKind.ALERT_HISTORY, "BMS_a066"
    )
    assert LAYOUT.parse(f"fleet/g/{CN_VIN}/errors/E1").kind is MessageKind.ERRORS
    assert LAYOUT.parse(f"fleet/g/{CN_VIN}/connectivity").kind is MessageKind.CONNECTIVITY
    assert LAYOUT.parse(f"fleet/g/onshore/{CN_VIN}/batch") == TopicAddress("fleet/g", "g", CN_VIN, MessageKind.BATCH)
    for shapeless in ("fleet/g/onshore/v/X", f"fleet/g/{CN_VIN}/v", f"fleet/g/{CN_VIN}/alerts/A/later", "fleet/g"):
        assert LAYOUT.parse(shapeless).kind is MessageKind.UNKNOWN, shapeless
    for elsewhere in (f"other/g/{CN_VIN}/v/VehicleSpeed", "fleet", f"tesla-cn/{CN_VIN}/v/VehicleSpeed"):
        with pytest.raises(InputError, match="under no topic base"):
            LAYOUT.parse(elsewhere)


def test_the_filters_are_shared_subscriptions_of_the_layout_s_shapes() -> None:
    filters = LAYOUT.filters("onshore")
    assert "$share/onshore/fleet/+/+/v/+" in filters and "$share/onshore/tesla-cn/prod/onshore/+/batch" in filters
    assert len(filters) == 12 and TopicLayout("", {"b": "g"}).filters(None)[0] == "b/+/v/+"
    assert LAYOUT.errors_topic("fleet/g") == "fleet/g/onshore/errors"


def _records(topic: str, payload: bytes, **kw: object) -> list[dict[str, object]]:
    address = LAYOUT.parse(topic)
    records = message_records(
        address,
        payload,
        received_ms=T,
        stamped_by="c1",
        content_type=kw.get("content_type"),  # type: ignore[arg-type]
        limits=LIMITS,
        max_bytes=int(kw.get("max_bytes", 10_000)),  # type: ignore[call-overload]
    )
    return [{"msg_id": r.msg_id, "ts": r.ts, "signal": r.signal, "value": r.value} for r in records]


def test_a_datum_is_stamped_on_arrival_and_its_value_takes_the_stored_form() -> None:
    assert _records(f"fleet/g/{CN_VIN}/v/VehicleSpeed", b"42.5") == [
        {"msg_id": f"V:{T}:VehicleSpeed:c1", "ts": T, "signal": "VehicleSpeed", "value": 42.5}
    ]
    assert _records(f"fleet/g/{CN_VIN}/v/InsideTemp", b'"<invalid>"')[0]["value"] is None
    assert _records(f"fleet/g/{CN_VIN}/v/Soc", b'{"value": 77.5}')[0]["value"] == 77.5  # the first dispatcher's form
    tyres = _records(f"fleet/g/{CN_VIN}/v/TpmsHardWarnings", b'{"front_left": true}')[0]["value"]
    assert tyres == {"FrontLeft": True, "FrontRight": False, "RearLeft": False, "RearRight": False}
    assert dispatcher_value({}, "7SATTEST000000001")["SemiRearAxleRight2"] is False  # a Semi: ten tyres
    assert dispatcher_value({"latitude": 1.0, "longitude": 2.0}) == {"latitude": 1.0, "longitude": 2.0}


def test_arrival_stamps_keep_one_datum_s_backlog_apart_and_in_order() -> None:
    stamps = ArrivalStamps()
    speed = LAYOUT.parse(f"fleet/g/{CN_VIN}/v/VehicleSpeed")
    odometer = LAYOUT.parse(f"fleet/g/{CN_VIN}/v/Odometer")
    assert [stamps.stamp(speed, T) for _ in range(3)] == [T, T + 1, T + 2]
    assert stamps.stamp(odometer, T) == T and stamps.stamp(speed, T + 10) == T + 10


def test_alerts_errors_and_connectivity_keep_their_own_times_and_names() -> None:
    current = orjson.dumps({"StartedAt": "2025-10-09T08:00:00Z", "Audiences": ["Customer", "Service"]})
    [alert] = _records(f"fleet/g/{CN_VIN}/alerts/BMS_a066/current", current)
    assert alert["ts"] == 1_759_996_800_000 and alert["msg_id"].startswith("alerts:1759996800000:")  # type: ignore[union-attr]
    assert alert["value"] == {
        "name": "BMS_a066",
        "audiences": ["Customer", "Service"],
        "started_at": 1_759_996_800_000,
        "ended_at": None,
    }
    history = orjson.dumps([{"StartedAt": "2025-10-09T08:00:00Z", "Audiences": None}, {"Audiences": ["Customer"]}])
    assert [r["ts"] for r in _records(f"fleet/g/{CN_VIN}/alerts/A/history", history)] == [1_759_996_800_000, T]
    error = orjson.dumps({"Body": "queue full", "Tags": {"field": "VehicleSpeed"}, "CreatedAt": "2025-10-09T08:00:01Z"})
    [record] = _records(f"fleet/g/{CN_VIN}/errors/NotifyError", error)
    assert record["value"] == {"name": "NotifyError", "body": "queue full", "tags": {"field": "VehicleSpeed"}}
    event = orjson.dumps({"ConnectionId": "c-1", "Status": "DISCONNECTED", "CreatedAt": "2025-10-09T08:00:02Z"})
    [record] = _records(f"fleet/g/{CN_VIN}/connectivity", event)
    assert record["value"] == {"connection_id": "c-1", "status": "DISCONNECTED", "network_interface": ""}


def test_an_onshore_batch_is_a_json_array_or_ndjson() -> None:
    one = {"msg_id": "m1", "ts": T, "signal": "VehicleSpeed", "value": 1}
    two = {**one, "msg_id": "m2"}
    topic = f"fleet/g/onshore/{CN_VIN}/batch"
    assert [r["msg_id"] for r in _records(topic, orjson.dumps([one, two]))] == ["m1", "m2"]
    assert len(_records(topic, orjson.dumps(one) + b"\n" + orjson.dumps(two))) == 2
    ndjson = _records(topic, orjson.dumps(one), content_type="application/x-ndjson")
    assert [r["msg_id"] for r in ndjson] == ["m1"]


@pytest.mark.parametrize(
    ("topic", "payload", "error", "says"),
    [
        (f"fleet/g/{CN_VIN}/v/VehicleSpeed", b"\xff\x00", InputError, "are not JSON"),
        (f"fleet/g/{CN_VIN}/v/VehicleSpeed", b"", InputError, "is empty"),
        (f"fleet/g/{CN_VIN}/v/WarpDrive", b"1", ValidationError, "WarpDrive is not a fleet-telemetry field"),
        (f"fleet/g/{CN_VIN}/v/Vehicle%Speed", b"1", ValidationError, r"\(not a name\)"),
        (f"fleet/g/{CN_VIN}/v/VehicleName", b'"' + b"x" * 11_000 + b'"', PayloadTooLargeError, "max_message_bytes"),
        (f"fleet/g/{CN_VIN}/alerts/A/current", b'{"StartedAt": "yesterday"}', ValidationError, "StartedAt: must be"),
        (f"fleet/g/{CN_VIN}/alerts/A/current", b'{"Colour": "red"}', ValidationError, "unknown field `Colour`"),
        (f"fleet/g/{CN_VIN}/alerts/A/current", b'{"Audiences": ["Aliens"]}', ValidationError, "Audiences"),
        (f"fleet/g/{CN_VIN}/alerts/A/current", b'{"Name": "B"}', ValidationError, "another alert or error"),
        (f"fleet/g/{CN_VIN}/alerts/A/history", b'{"StartedAt": null}', ValidationError, "Expected `array`"),
        (f"fleet/g/{CN_VIN}/errors/E", b'{"Tags": {"a": 1}}', ValidationError, "Tags"),
        (f"fleet/g/{CN_VIN}/connectivity", b'{"Status": "MAYBE"}', ValidationError, "CONNECTED"),
        (f"fleet/g/onshore/{CN_VIN}/batch", b'[{"msg_id": "m", "signal": "X"}]', ValidationError, "`ts`"),
        (f"fleet/g/onshore/{CN_VIN}/batch", b"{not json", InputError, "not valid JSON"),
    ],
)
def test_a_bad_message_is_refused_precisely_and_without_its_value(
    topic: str, payload: bytes, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says) as refused:
        _records(topic, payload)
    assert CN_VIN not in str(refused.value) and "xxxx" not in str(refused.value)


def test_mqtt_settings_refuse_wildcards_overlapping_bases_and_unknown_gateways(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        MqttSettings(topic_root="fleet/+")
    with pytest.raises(ValueError, match="must not start with"):
        MqttSettings(bases={"$SYS/x": "g"})
    with pytest.raises(ValueError, match="would come twice"):
        MqttSettings(bases={"fleet/x": "g"})
    config, _ = init_workspace(tmp_path)
    with pytest.raises(ConfigError, match="no gateway token has"):
        load_settings(config, env={}, overrides={"mqtt": {"bases": {"tesla-cn": "nobody"}}})
    settings = load_settings(config, env={"ONSHORE_MQTT__PASSWORD": "s3cret"}, overrides={})
    assert settings.mqtt.password is not None and settings.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
