"""onshore's fleet-telemetry schema is upstream's on the wire: field numbers, value cases and their types, enum
values and message shapes, checked against the shared field tables and against bytes written by hand from the
protobuf encoding rules; and the committed descriptor module is what protoc makes of the committed .proto files."""

from __future__ import annotations

import os
import struct

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FieldDescriptor

from onshore.ingest.fleet_telemetry import schema
from onshore.ingest.fleet_telemetry.descriptors import FILE_DESCRIPTOR_SET
from onshore.ingest.fleet_telemetry.regenerate import PROTO_FILES, PROTOS
from onshore.sim.robustness.ft_targets import varint
from tests.conftest import CN_VIN, shared_data

F = FieldDescriptor
SCALAR_TYPES = {
    "string": F.TYPE_STRING,
    "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64,
    "float": F.TYPE_FLOAT,
    "double": F.TYPE_DOUBLE,
    "bool": F.TYPE_BOOL,
}


def _tsv(name: str) -> list[list[str]]:
    lines = shared_data(name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:] if line.strip()]


def test_the_field_enum_is_the_260_fields_of_the_shared_table() -> None:
    expected = {int(number): name.strip() for number, name in _tsv("fleet-telemetry-fields.tsv")}
    assert len(expected) == 260
    assert expected == schema.FIELD_NAMES


def test_every_value_case_has_upstream_s_number_and_type() -> None:
    value = schema.VALUE
    oneof = value.oneofs_by_name["value"]
    assert {f.name for f in oneof.fields} == {f.name for f in value.fields}, "every Value field is in the oneof"
    for number, case, kind in _tsv("fleet-telemetry-value-cases.tsv"):
        field = value.fields_by_number[int(number)]
        assert field.name == case
        if kind in SCALAR_TYPES:
            assert field.type == SCALAR_TYPES[kind], case
        elif field.type == F.TYPE_ENUM:
            assert field.enum_type.name == kind, case
        else:
            assert field.type == F.TYPE_MESSAGE and field.message_type.name == kind, case
    assert len(value.fields) == len(_tsv("fleet-telemetry-value-cases.tsv")) == 53


def _shape(full_name: str) -> dict[str, tuple[int, int, bool]]:
    message = schema.POOL.FindMessageTypeByName(full_name)
    return {f.name: (f.number, f.type, f.is_repeated) for f in message.fields}


@pytest.mark.parametrize(
    ("full_name", "shape"),
    [
        (
            "telemetry.vehicle_data.Payload",
            {
                "data": (1, F.TYPE_MESSAGE, True),
                "created_at": (2, F.TYPE_MESSAGE, False),
                "vin": (3, F.TYPE_STRING, False),
                "is_resend": (4, F.TYPE_BOOL, False),
            },
        ),
        ("telemetry.vehicle_data.Datum", {"key": (1, F.TYPE_ENUM, False), "value": (2, F.TYPE_MESSAGE, False)}),
        (
            "telemetry.vehicle_data.LocationValue",
            {"latitude": (1, F.TYPE_DOUBLE, False), "longitude": (2, F.TYPE_DOUBLE, False)},
        ),
        (
            "telemetry.vehicle_data.Doors",
            {
                name: (number, F.TYPE_BOOL, False)
                for number, name in enumerate(
                    ["DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront", "TrunkRear"], 1
                )
            },
        ),
        (
            "telemetry.vehicle_data.Time",
            {"hour": (1, F.TYPE_INT32, False), "minute": (2, F.TYPE_INT32, False), "second": (3, F.TYPE_INT32, False)},
        ),
        (
            "telemetry.vehicle_alerts.VehicleAlerts",
            {
                "alerts": (1, F.TYPE_MESSAGE, True),
                "created_at": (2, F.TYPE_MESSAGE, False),
                "vin": (3, F.TYPE_STRING, False),
            },
        ),
        (
            "telemetry.vehicle_alerts.VehicleAlert",
            {
                "name": (1, F.TYPE_STRING, False),
                "audiences": (2, F.TYPE_ENUM, True),
                "started_at": (3, F.TYPE_MESSAGE, False),
                "ended_at": (4, F.TYPE_MESSAGE, False),
            },
        ),
        (
            "telemetry.vehicle_error.VehicleError",
            {
                "created_at": (1, F.TYPE_MESSAGE, False),
                "name": (2, F.TYPE_STRING, False),
                "tags": (3, F.TYPE_MESSAGE, True),
                "body": (4, F.TYPE_STRING, False),
            },
        ),
        (
            "telemetry.vehicle_connectivity.VehicleConnectivity",
            {
                "vin": (1, F.TYPE_STRING, False),
                "connection_id": (2, F.TYPE_STRING, False),
                "status": (3, F.TYPE_ENUM, False),
                "created_at": (4, F.TYPE_MESSAGE, False),
                "network_interface": (5, F.TYPE_STRING, False),
            },
        ),
    ],
)
def test_the_messages_have_upstream_s_shapes(full_name: str, shape: dict[str, tuple[int, int, bool]]) -> None:
    assert _shape(full_name) == shape


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def _len(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + varint(len(payload)) + payload


def test_hand_written_wire_bytes_decode_to_the_fields_they_name() -> None:
    """Bytes written from the encoding rules alone (no schema): if a number or a type were off, this would fail."""
    speed = _len(2, _tag(5, 1) + struct.pack("<d", 42.5))  # Value.double_value = 5 (fixed64)
    gear = _len(2, _tag(9, 0) + varint(5))  # Value.shift_state_value = 9, ShiftStateD = 5
    place = _len(2, _len(7, _tag(1, 1) + struct.pack("<d", 26.6) + _tag(2, 1) + struct.pack("<d", 106.6)))
    doors = _len(2, _len(21, _tag(1, 0) + b"\x01" + _tag(6, 0) + b"\x01"))  # DriverFront, TrunkRear
    clock = _len(2, _len(31, _tag(1, 0) + varint(7) + _tag(2, 0) + varint(30)))
    soc = _len(2, _tag(4, 5) + struct.pack("<f", 77.5))  # float_value = 4 (fixed32)
    odometer = _len(2, _tag(3, 0) + varint(2**40))  # long_value = 3
    invalid = _len(2, _tag(10, 0) + b"\x01")
    data = b"".join(
        _len(1, _tag(1, 0) + varint(key) + value)
        for key, value in [
            (4, speed),
            (10, gear),
            (21, place),
            (58, doors),
            (46, clock),
            (8, soc),
            (5, odometer),
            (85, invalid),
            (259, invalid),
        ]
    )
    created = _len(2, _tag(1, 0) + varint(1_700_000_000) + _tag(2, 0) + varint(123_000_000))
    wire = data + created + _len(3, CN_VIN.encode()) + _tag(4, 0) + b"\x01"
    payload = schema.Payload.FromString(wire)
    assert payload.vin == CN_VIN and payload.is_resend and payload.created_at.ToMilliseconds() == 1_700_000_000_123
    keys = [schema.FIELD_NAMES[d.key] for d in payload.data]
    assert keys == [
        "VehicleSpeed",
        "Gear",
        "Location",
        "DoorState",
        "ScheduledDepartureTime",
        "Soc",
        "Odometer",
        "InsideTemp",
        "SelfDrivingMilesSinceReset",
    ]
    values = [d.value for d in payload.data]
    assert values[0].double_value == 42.5
    assert schema.ENUM_CASES["shift_state_value"][values[1].shift_state_value] == "ShiftStateD"
    assert (values[2].location_value.latitude, values[2].location_value.longitude) == (26.6, 106.6)
    assert values[3].door_value.DriverFront and values[3].door_value.TrunkRear and not values[3].door_value.DriverRear
    assert (values[4].time_value.hour, values[4].time_value.minute) == (7, 30)
    assert values[5].float_value == 77.5 and values[6].long_value == 2**40
    assert values[7].WhichOneof("value") == "invalid"
    assert payload.SerializeToString() == wire  # and back, byte for byte


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        ("ShiftState", {"ShiftStateP": 2, "ShiftStateR": 3, "ShiftStateN": 4, "ShiftStateD": 5, "ShiftStateSNA": 6}),
        ("SentryModeState", {"SentryModeStateOff": 1, "SentryModeStateArmed": 3, "SentryModeStateQuiet": 6}),
        ("BuckleStatus", {"BuckleStatusUnlatched": 1, "BuckleStatusLatched": 2}),
        ("CableType", {"CableTypeGB_AC": 3, "CableTypeGB_DC": 4}),
        ("FastCharger", {"FastChargerSupercharger": 1, "FastChargerGB": 3, "FastChargerSNA": 8}),
        ("DetailedChargeStateValue", {"DetailedChargeStateCharging": 4, "DetailedChargeStateStopped": 6}),
    ],
)
def test_enum_values_carry_upstream_s_numbers(enum: str, values: dict[str, int]) -> None:
    descriptor = schema.POOL.FindEnumTypeByName(f"telemetry.vehicle_data.{enum}")
    assert {name: descriptor.values_by_name[name].number for name in values} == values
    assert descriptor.values_by_number[0].name.endswith("Unknown")  # proto3: 0 is the default, never a state


def test_the_schema_lives_in_a_pool_of_its_own() -> None:
    """Upstream's generated modules may be imported beside onshore: the default pool must stay free of its names."""
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("telemetry.vehicle_data.Payload")
    assert schema.Payload.DESCRIPTOR.file.pool is schema.POOL


def test_the_descriptor_module_is_what_protoc_makes_of_the_proto_files() -> None:
    try:
        from onshore.ingest.fleet_telemetry.regenerate import compile_protos

        compiled = compile_protos()
    except ImportError as exc:  # grpcio-tools is a test dependency
        if os.environ.get("CI") == "true":
            pytest.fail(f"grpcio-tools is required in CI: {exc}")
        pytest.skip(f"grpcio-tools not installed: {exc}")
    committed = descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET)
    assert [f.name for f in committed.file] == list(PROTO_FILES)
    assert compiled == committed, "run: python -m onshore.ingest.fleet_telemetry.regenerate"
    assert sorted(p.name for p in PROTOS.glob("*.proto")) == sorted(PROTO_FILES)
