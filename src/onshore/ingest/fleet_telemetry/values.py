"""A fleet-telemetry ``Value`` as the JSON value onshore stores: the form upstream's dispatchers write.

One form whatever the path it came by, so that the same datum stores the same row from the protobuf record, its
JSON form, the MQTT dispatcher's per-field messages, or onshore's own JSON:

==============================  ===========================================================================
value case                      stored value
==============================  ===========================================================================
string, int, long, double, bool the value itself (a numeric string stays a string here; classify turns it into
                                a number where the rule pack says the signal is one)
float                           the shortest decimal that is the same 32-bit float (``0.1``, not
                                ``0.10000000149011612``), as upstream's JSON writes it
location                        ``{"latitude": ..., "longitude": ...}``
an enum                         its name (``"ShiftStateD"``); a number this schema does not name stays a number
invalid                         ``null``
doors                           ``{"DriverFront": bool, ...}``, the six doors
time                            ``"HH:MM:SS"``
tyre location                   ``{"FrontLeft": bool, ...}``: four tyres, ten on a Semi (VIN position 4 = ``T``)
==============================  ===========================================================================
"""

from __future__ import annotations

import math
import struct
from typing import Any

from google.protobuf.message import Message

from onshore.ingest.fleet_telemetry.schema import ENUM_CASES

INVALID_TEXT = "<invalid>"  # what upstream's MQTT and logger dispatchers write for an `invalid` value
DOOR_KEYS = ("DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront", "TrunkRear")
_TYRES = (
    ("FrontLeft", "front_left"),
    ("FrontRight", "front_right"),
    ("RearLeft", "rear_left"),
    ("RearRight", "rear_right"),
)
# A Semi's rear-left/right tyres are its middle axle's (upstream's dispatchers name them so)
_SEMI_TYRES = (
    ("FrontLeft", "front_left"),
    ("FrontRight", "front_right"),
    ("SemiMiddleAxleLeft", "rear_left"),
    ("SemiMiddleAxleRight", "rear_right"),
    ("SemiMiddleAxleLeft2", "semi_middle_axle_left_2"),
    ("SemiMiddleAxleRight2", "semi_middle_axle_right_2"),
    ("SemiRearAxleLeft", "semi_rear_axle_left"),
    ("SemiRearAxleRight", "semi_rear_axle_right"),
    ("SemiRearAxleLeft2", "semi_rear_axle_left_2"),
    ("SemiRearAxleRight2", "semi_rear_axle_right_2"),
)
_PLAIN = frozenset({"string_value", "int_value", "long_value", "boolean_value"})
_TYRE_FIELDS = frozenset(field for _, field in _SEMI_TYRES)
_DOORS = frozenset(DOOR_KEYS)


class NoStoredForm(Exception):
    """A value that has no stored form (no case set, not finite). Internal: the decoder turns it into a
    ValidationError naming the datum."""


def stored_value(value: Message, vin: str = "") -> Any:
    """The stored form of a ``telemetry.vehicle_data.Value`` (see the table above).

    Args:
        vin: the payload's VIN; only its 4th character is read, to tell a Semi's tyre layout.

    Raises:
        NoStoredForm: no value case is set, or a float is NaN or infinite.
    """
    case = value.WhichOneof("value")
    if case is None:
        raise NoStoredForm("the value has no case set (an empty Value)")
    if case in _PLAIN:
        return getattr(value, case)
    if case == "double_value":
        return _finite(value.double_value)
    if case == "float_value":
        return _shortest_float32(_finite(value.float_value))
    if case == "location_value":
        location = value.location_value
        return {"latitude": _finite(location.latitude), "longitude": _finite(location.longitude)}
    if case == "invalid":
        return None
    names = ENUM_CASES.get(case)
    if names is not None:
        number = getattr(value, case)
        return names.get(number, number)
    if case == "door_value":
        doors = value.door_value
        return {key: getattr(doors, key) for key in DOOR_KEYS}
    if case == "time_value":
        time = value.time_value
        return f"{time.hour:02d}:{time.minute:02d}:{time.second:02d}"
    if case == "tire_location_value":
        tyres = value.tire_location_value
        return {key: getattr(tyres, field) for key, field in _tyre_layout(vin)}
    raise NoStoredForm(f"value case {case!r} has no stored form")  # a case added to the schema and not here


def dispatcher_value(value: Any, vin: str = "") -> Any:
    """A value as a dispatcher's JSON carries it (the MQTT per-field messages), in the stored form.

    Upstream's ``"<invalid>"`` becomes ``null``. A tyre set comes from upstream's MQTT dispatcher as the protobuf
    names of the tyres that are set (``{"front_left": true}``, ``{}`` when none: proto3 leaves false out); it
    becomes the stored form with every tyre of the layout (``vin``'s 4th character tells a Semi). Everything else
    already is the stored form (doors in the order of the protobuf's fields, whatever order the JSON had).
    """
    if type(value) is dict:
        if value.keys() <= _TYRE_FIELDS and all(flag is True for flag in value.values()):
            return {key: field in value for key, field in _tyre_layout(vin)}
        if value.keys() == _DOORS:  # Go writes a map's keys sorted; the stored form has the protobuf's order
            return {key: value[key] for key in DOOR_KEYS}
        return value
    return None if value == INVALID_TEXT else value


def _tyre_layout(vin: str) -> tuple[tuple[str, str], ...]:
    """(stored key, protobuf field) of each tyre: ten on a Semi (VIN position 4 is ``T``), else four."""
    return _SEMI_TYRES if len(vin) > 3 and vin[3] == "T" else _TYRES


def _finite(number: float) -> float:
    if math.isfinite(number):
        return number
    raise NoStoredForm("the number is not finite (NaN or infinity)")


def _shortest_float32(number: float) -> float:
    packed = struct.pack("<f", number)
    for digits in range(6, 10):  # 9 significant digits always give back the same 32-bit float
        shorter = float(f"{number:.{digits}g}")
        if struct.pack("<f", shorter) == packed:
            return shorter
    return number
