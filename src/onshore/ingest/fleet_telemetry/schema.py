"""The fleet-telemetry messages, built from the committed descriptor set in a descriptor pool of their own.

A pool of its own, not protobuf's default one: a process may also import upstream's generated modules (a test
harness building payloads with them), which declare the same full names; in the default pool the second import
would fail. The descriptor set is compiled from ``protos/*.proto`` (see ``regenerate``); reading it needs only
the ``protobuf`` runtime, whatever its version, and no generated code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.message import Message

from onshore.ingest.fleet_telemetry.descriptors import FILE_DESCRIPTOR_SET


class RecordType(StrEnum):
    """The record types of fleet-telemetry (its ``txtype``: the topic suffix, the HTTP dispatcher's ``type``)."""

    V = "V"  # signal data: `Payload`
    ALERTS = "alerts"  # `VehicleAlerts`
    ERRORS = "errors"  # `VehicleErrors`
    CONNECTIVITY = "connectivity"  # `VehicleConnectivity` (written by the server on connect and disconnect)


POOL = descriptor_pool.DescriptorPool()
_timestamp = descriptor_pb2.FileDescriptorProto()
timestamp_pb2.DESCRIPTOR.CopyToProto(_timestamp)
POOL.Add(_timestamp)
for _file in descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET).file:
    POOL.Add(_file)

MESSAGE_NAMES = {
    RecordType.V: "telemetry.vehicle_data.Payload",
    RecordType.ALERTS: "telemetry.vehicle_alerts.VehicleAlerts",
    RecordType.ERRORS: "telemetry.vehicle_error.VehicleErrors",
    RecordType.CONNECTIVITY: "telemetry.vehicle_connectivity.VehicleConnectivity",
}


def message_class(full_name: str) -> type[Message]:
    """The message class of ``full_name`` (e.g. ``telemetry.vehicle_data.Payload``) in onshore's pool."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


MESSAGES: dict[RecordType, type[Message]] = {kind: message_class(name) for kind, name in MESSAGE_NAMES.items()}
Payload = MESSAGES[RecordType.V]
VehicleAlerts = MESSAGES[RecordType.ALERTS]
VehicleErrors = MESSAGES[RecordType.ERRORS]
VehicleConnectivity = MESSAGES[RecordType.CONNECTIVITY]

_FIELD_ENUM: EnumDescriptor = POOL.FindEnumTypeByName("telemetry.vehicle_data.Field")
# field number -> name (`Field`: 0..259), and back
FIELD_NAMES: dict[int, str] = {v.number: v.name for v in _FIELD_ENUM.values}
FIELD_NUMBERS: dict[str, int] = {name: number for number, name in FIELD_NAMES.items()}
VALUE: Descriptor = POOL.FindMessageTypeByName("telemetry.vehicle_data.Value")
# the value cases whose type is an enum: case name -> {number: name}
ENUM_CASES: dict[str, dict[int, str]] = {
    f.name: {v.number: v.name for v in f.enum_type.values} for f in VALUE.fields if f.enum_type is not None
}
AUDIENCES: dict[int, str] = {
    v.number: v.name for v in POOL.FindEnumTypeByName("telemetry.vehicle_alerts.Audience").values
}
CONNECTIVITY_STATUS: dict[int, str] = {
    v.number: v.name for v in POOL.FindEnumTypeByName("telemetry.vehicle_connectivity.ConnectivityEvent").values
}


def new_message(kind: RecordType, **fields: Any) -> Message:
    """A new message of record type ``kind`` (tests and tools build payloads with it)."""
    return MESSAGES[kind](**fields)
