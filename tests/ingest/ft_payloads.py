"""Build fleet-telemetry messages for tests (synthetic VINs only), with onshore's own schema module.

``datum("VehicleSpeed", "double_value", 42.5)``, ``datum("Gear", "shift_state_value", "ShiftStateD")``,
``datum("Location", "location_value", (26.6, 106.6))``; `payload` puts them in a ``Payload``.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from onshore.ingest.fleet_telemetry import schema
from onshore.sim.robustness.ft_targets import with_unknown_field as with_unknown_field  # re-exported

Datum = tuple[str | int, str, Any]  # field name (or number), value case, value


def now_ms() -> int:
    return int(time.time() * 1000)


def datum(field: str | int, case: str, value: Any) -> Datum:
    return (field, case, value)


def set_value(target: Message, case: str, value: Any) -> None:
    """Set ``target`` (a ``Value``) to ``value`` under ``case``."""
    if case == "location_value":
        target.location_value.latitude, target.location_value.longitude = value
    elif case == "time_value":
        target.time_value.hour, target.time_value.minute, target.time_value.second = value
    elif case in ("door_value", "tire_location_value"):
        part = getattr(target, case)
        part.SetInParent()
        for key, flag in value.items():
            setattr(part, key, flag)
    elif case in schema.ENUM_CASES and isinstance(value, str):
        numbers = {name: number for number, name in schema.ENUM_CASES[case].items()}
        setattr(target, case, numbers[value])
    else:
        setattr(target, case, value)


def payload(data: list[Datum], *, vin: str = "", created_ms: int | None = None, resend: bool = False) -> Message:
    message = schema.Payload(vin=vin, is_resend=resend)
    message.created_at.FromMilliseconds(now_ms() - 1000 if created_ms is None else created_ms)
    for field, case, value in data:
        entry = message.data.add()
        entry.key = field if isinstance(field, int) else schema.FIELD_NUMBERS[field]
        set_value(entry.value, case, value)
    return message


def alerts(vin: str, created_ms: int, items: list[tuple[str, list[int], int | None, int | None]]) -> Message:
    """A ``VehicleAlerts``: ``items`` are ``(name, audiences, started_ms, ended_ms)``."""
    message = schema.VehicleAlerts(vin=vin)
    message.created_at.FromMilliseconds(created_ms)
    for name, audiences, started, ended in items:
        alert = message.alerts.add(name=name, audiences=audiences)
        if started is not None:
            alert.started_at.FromMilliseconds(started)
        if ended is not None:
            alert.ended_at.FromMilliseconds(ended)
    return message


def errors(vin: str, created_ms: int, items: list[tuple[str, str, dict[str, str]]]) -> Message:
    message = schema.VehicleErrors(vin=vin)
    message.created_at.FromMilliseconds(created_ms)
    for name, body, tags in items:
        error = message.errors.add(name=name, body=body)
        error.tags.update(tags)
        error.created_at.FromMilliseconds(created_ms)
    return message


def connectivity(vin: str, created_ms: int, status: int, connection_id: str = "c-1") -> Message:
    message = schema.VehicleConnectivity(vin=vin, connection_id=connection_id, status=status, network_interface="wifi")
    message.created_at.FromMilliseconds(created_ms)
    return message


def as_json(message: Message) -> dict[str, Any]:
    """The message in protobuf's JSON form, as upstream's JSON dispatchers write it (every field, enum names)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
