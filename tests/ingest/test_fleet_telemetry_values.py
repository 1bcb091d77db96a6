"""A fleet-telemetry value in its stored form, whatever path it came by; records and message ids; decoding
refusals that name the place and never the value."""

from __future__ import annotations

import struct

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onshore.config import IngestSettings
from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.ingest.fleet_telemetry.decode import decode_request
from onshore.ingest.fleet_telemetry.records import alert_record, field_record
from onshore.ingest.fleet_telemetry.schema import ENUM_CASES, VALUE, RecordType, message_class
from onshore.ingest.fleet_telemetry.values import NoStoredForm, dispatcher_value, stored_value
from tests.conftest import CN_VIN
from tests.ingest import ft_payloads as ft

Value = message_class("telemetry.vehicle_data.Value")


def _value(case: str, value: object) -> object:
    message = Value()
    ft.set_value(message, case, value)
    return message


@pytest.mark.parametrize("case", sorted(ENUM_CASES))
def test_every_enum_case_is_stored_by_name_and_an_unnamed_number_as_itself(case: str) -> None:
    names = ENUM_CASES[case]
    for number, name in names.items():
        assert stored_value(_value(case, number)) == name
    assert stored_value(_value(case, max(names) + 7)) == max(names) + 7


def test_every_value_case_has_a_stored_form() -> None:
    samples = {
        "string_value": "x",
        "int_value": -5,
        "long_value": 2**62,
        "float_value": 1.5,
        "double_value": 2.25,
        "boolean_value": False,
        "location_value": (1.0, 2.0),
        "invalid": True,
        "door_value": {"TrunkFront": True},
        "time_value": (23, 59, 9),
        "tire_location_value": {"rear_right": True},
    }
    for field in VALUE.fields:
        if field.name in ENUM_CASES:
            continue
        stored_value(_value(field.name, samples[field.name]))  # raises for a case without a stored form
    assert stored_value(_value("time_value", (23, 59, 9))) == "23:59:09"
    assert stored_value(_value("invalid", True)) is None
    assert stored_value(_value("location_value", (1.0, 2.0))) == {"latitude": 1.0, "longitude": 2.0}
    assert stored_value(_value("door_value", {"TrunkFront": True}))["TrunkFront"] is True


def test_tyres_of_a_semi_are_named_as_upstream_names_them() -> None:
    value = _value("tire_location_value", {"rear_left": True, "semi_rear_axle_right_2": True})
    car = stored_value(value, "5YJ3E1EA7KF000001")
    semi = stored_value(value, "7G2T00000000000001")
    assert car == {"FrontLeft": False, "FrontRight": False, "RearLeft": True, "RearRight": False}
    assert semi["SemiMiddleAxleLeft"] is True and semi["SemiRearAxleRight2"] is True and len(semi) == 10


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_a_float_is_stored_as_the_shortest_decimal_of_the_same_32_bit_float(number: float) -> None:
    stored = stored_value(_value("float_value", number))
    assert struct.pack("<f", stored) == struct.pack("<f", number)
    assert len(repr(stored)) <= max(len(repr(number)), 12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_number_that_is_not_finite_has_no_stored_form(bad: float) -> None:
    with pytest.raises(NoStoredForm):
        stored_value(_value("double_value", bad))
    with pytest.raises(NoStoredForm):
        stored_value(Value())  # no case set


def test_a_dispatcher_s_invalid_is_null() -> None:
    assert dispatcher_value("<invalid>") is None and dispatcher_value(42.5) == 42.5


def test_message_ids_come_from_what_the_message_carries() -> None:
    assert field_record("VehicleSpeed", 1.0, 1_700_000_000_123).msg_id == "V:1700000000123:VehicleSpeed"
    a = alert_record("X", ["Customer"], 1_000, None, 2_000)
    b = alert_record("X", ["Customer"], 1_000, None, 9_000)  # the same alert in a later message
    c = alert_record("X", ["Customer"], 1_000, 1_500, 9_000)  # and once it ended
    assert a.msg_id == b.msg_id != c.msg_id and a.ts == 1_000
    assert CN_VIN not in a.msg_id


LIMITS = IngestSettings()


def test_many_json_messages_keep_their_order_and_index() -> None:
    created = ft.now_ms() - 1000
    messages = [
        ft.as_json(ft.payload([ft.datum("Soc", "double_value", i)], vin=CN_VIN, created_ms=created + i))
        for i in range(3)
    ]
    decoded = decode_request(orjson.dumps(messages), "application/json", RecordType.V, LIMITS)
    assert [(m.index, m.vin, m.records[0].value) for m in decoded] == [
        (0, CN_VIN, 0.0),
        (1, CN_VIN, 1.0),
        (2, CN_VIN, 2.0),
    ]
    ndjson = b"\n".join(orjson.dumps(m) for m in messages) + b"\n\n"
    assert decode_request(ndjson, "application/x-ndjson; charset=utf-8", RecordType.V, LIMITS) == decoded


def test_json_with_proto_field_names_and_numbers_as_strings_is_read() -> None:
    """protobuf's JSON mapping accepts the original field names and 64-bit numbers as strings."""
    body = (
        b'{"data":[{"key":"Odometer","value":{"long_value":"123456"}},{"key":5,"value":{"doubleValue":"1.5"}}],'
        b'"created_at":"2024-05-01T00:00:00.250Z","vin":"' + CN_VIN.encode() + b'","is_resend":true}'
    )
    (message,) = decode_request(body, "application/json", RecordType.V, LIMITS)
    assert message.resend and [r.value for r in message.records] == [123456, 1.5]
    assert message.records[0].ts == 1714521600250


@pytest.mark.parametrize(
    ("body", "content_type", "error", "place"),
    [
        (
            b"\x00" * (LIMITS.max_protobuf_bytes + 1),
            "application/x-protobuf",
            PayloadTooLargeError,
            "max_protobuf_bytes",
        ),
        (b"x", "application/octet-stream", UnsupportedMediaTypeError, "application/x-protobuf"),
        (b"", "application/json", InputError, "not valid JSON"),
        (b"[]", "application/json", InputError, "no message"),
        (
            b'{"vin":"' + CN_VIN.encode() + b'","data":[{"key":"VehicleSpeed","value":{"doubleValue":"x"}}]}',
            "application/json",
            ValidationError,
            "Payload.data[0].value.doubleValue",
        ),
    ],
)
def test_refusals_name_the_place_and_never_the_value(body: bytes, content_type: str, error: type, place: str) -> None:
    with pytest.raises(error) as raised:
        decode_request(body, content_type, RecordType.V, LIMITS)
    assert place in raised.value.message and CN_VIN not in raised.value.message
