"""fleet-telemetry messages as onshore signal records: one `WireRecord` per datum, alert, error or connection event.

Each record gets a message id made only of what the message carries, so a resent message (``is_resend``, a
dispatcher's retry, a gateway resending a request) has the same ids and is stored once (the store de-duplicates
per vehicle and message id). The VIN is never part of an id: records are already keyed by the vehicle.

==============  ========================  ==========================================  =============================
record type     signal                    message id                                   time (``ts``)
==============  ========================  ==========================================  =============================
``V``           the field's name          ``V:<created_at ms>:<field name>``           the payload's ``created_at``
``alerts``      ``VehicleAlert``          ``alerts:<ts>:<digest of name, start, end>``  ``started_at`` (else created)
``errors``      ``VehicleError``          ``errors:<ts>:<digest of name, body, tags>``  the error's ``created_at``
``connectivity`` ``VehicleConnectivity``  ``connectivity:<ts>:<digest of id, status>``  ``created_at``
==============  ========================  ==========================================  =============================

A record built here is the record onshore's own JSON would carry for the same datum: ``{"msg_id", "ts",
"signal", "value"}`` with the value in its stored form (`values`), so both paths admit to the same batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from onshore.errors import ValidationError
from onshore.ingest.fleet_telemetry.schema import AUDIENCES, CONNECTIVITY_STATUS, FIELD_NAMES, RecordType
from onshore.ingest.fleet_telemetry.values import NoStoredForm, stored_value
from onshore.pipeline.admit import WireRecord

ALERT_SIGNAL = "VehicleAlert"
ERROR_SIGNAL = "VehicleError"
CONNECTIVITY_SIGNAL = "VehicleConnectivity"
# The signals of the record types other than `V` (the rule packs classify them beside the fields).
RECORD_TYPE_SIGNALS = (ALERT_SIGNAL, ERROR_SIGNAL, CONNECTIVITY_SIGNAL)
# Upstream reads an alert time whose seconds pass this (the largest protobuf duration) as milliseconds.
_SECONDS_THAT_ARE_MILLISECONDS = 315_576_000_000


@dataclass(frozen=True)
class VehicleMessage:
    """One decoded message: where it was in the request, the VIN it names ('' when none), its records."""

    index: int
    vin: str
    records: list[WireRecord]
    resend: bool = False


def field_record(field: str, value: Any, created_ms: int, *, stamped_by: str = "") -> WireRecord:
    """The record of one ``V`` datum: ``field`` (a `Field` name), its value in the stored form, the payload time.

    Args:
        stamped_by: for a datum that came without its time (the MQTT dispatcher's per-field messages), who
            stamped ``created_ms`` on arrival (an MQTT client id): ``V:<ms>:<field>:<stamped_by>``, so that two
            processes stamping the same millisecond never make the same id.
    """
    msg_id = f"V:{created_ms}:{field}:{stamped_by}" if stamped_by else f"V:{created_ms}:{field}"
    return WireRecord(msg_id=msg_id, ts=created_ms, signal=field, value=value)


def event_record(kind: RecordType, ts_ms: int, value: dict[str, Any], identity: tuple[Any, ...]) -> WireRecord:
    """The record of an alert, error or connectivity event; ``identity`` says which event it is (see the table)."""
    signal = {
        RecordType.ALERTS: ALERT_SIGNAL,
        RecordType.ERRORS: ERROR_SIGNAL,
        RecordType.CONNECTIVITY: CONNECTIVITY_SIGNAL,
    }[kind]
    digest = hashlib.sha256(repr(identity).encode()).hexdigest()[:24]
    return WireRecord(msg_id=f"{kind.value}:{ts_ms}:{digest}", ts=ts_ms, signal=signal, value=value)


def alert_value(name: str, audiences: list[str], started_ms: int | None, ended_ms: int | None) -> dict[str, Any]:
    """The stored value of one alert (times in epoch milliseconds; ``ended_ms`` None while it is active)."""
    return {"name": name, "audiences": audiences, "started_at": started_ms, "ended_at": ended_ms}


def alert_record(
    name: str, audiences: list[str], started_ms: int | None, ended_ms: int | None, created_ms: int
) -> WireRecord:
    """The record of one alert (the MQTT adapter's ``alerts/<name>/current`` and ``history`` messages too)."""
    ts = started_ms if started_ms is not None else created_ms
    value = alert_value(name, audiences, started_ms, ended_ms)
    return event_record(RecordType.ALERTS, ts, value, (name, started_ms, ended_ms))


def error_record(name: str, body: str, tags: dict[str, str], ts_ms: int) -> WireRecord:
    """The record of one telemetry-client error."""
    value = {"name": name, "body": body, "tags": tags}
    return event_record(RecordType.ERRORS, ts_ms, value, (name, body, sorted(tags.items())))


def connectivity_record(connection_id: str, status: str, network_interface: str, ts_ms: int) -> WireRecord:
    """The record of one connect or disconnect."""
    value = {"connection_id": connection_id, "status": status, "network_interface": network_interface}
    return event_record(RecordType.CONNECTIVITY, ts_ms, value, (connection_id, status))


def message_records(kind: RecordType, message: Message, index: int) -> VehicleMessage:
    """The records of one decoded message of record type ``kind`` (``index``: its place in the request).

    Raises:
        ValidationError (422): the message lacks its time, names a field number this schema does not know, or
            carries a value with no stored form. ``details`` name the message and datum, never a value.
    """
    if kind is RecordType.V:
        return VehicleMessage(index, message.vin, _payload_records(message, index), message.is_resend)
    if kind is RecordType.ALERTS:
        created = _required_ms(message, "created_at", index)
        records = [
            alert_record(
                alert.name,
                [AUDIENCES.get(a, str(a)) for a in alert.audiences],
                _alert_ms(alert, "started_at"),
                _alert_ms(alert, "ended_at"),
                created,
            )
            for alert in message.alerts
        ]
        return VehicleMessage(index, message.vin, records)
    if kind is RecordType.ERRORS:
        created = _required_ms(message, "created_at", index)
        records = [
            error_record(e.name, e.body, dict(e.tags), _ms(e.created_at) if e.HasField("created_at") else created)
            for e in message.errors
        ]
        return VehicleMessage(index, message.vin, records)
    ts = _required_ms(message, "created_at", index)
    status = CONNECTIVITY_STATUS.get(message.status, str(message.status))
    return VehicleMessage(
        index, message.vin, [connectivity_record(message.connection_id, status, message.network_interface, ts)]
    )


def _payload_records(payload: Message, index: int) -> list[WireRecord]:
    created = _required_ms(payload, "created_at", index)
    vin = payload.vin
    records: list[WireRecord] = []
    for position, datum in enumerate(payload.data):
        field = FIELD_NAMES.get(datum.key)
        if field is None:
            raise _refused(
                index,
                position,
                "key",
                f"field number {datum.key} is not a fleet-telemetry field this onshore knows "
                f"(0..{max(FIELD_NAMES)}); upgrade onshore or leave the field out of the vehicle's configuration",
            )
        try:
            value = stored_value(datum.value, vin)
        except NoStoredForm as exc:
            raise _refused(index, position, "value", f"{field}: {exc}") from None
        records.append(field_record(field, value, created))
    return records


def _ms(timestamp: Message) -> int:
    return int(timestamp.seconds) * 1000 + int(timestamp.nanos) // 1_000_000


def _required_ms(message: Message, name: str, index: int) -> int:
    if not message.HasField(name):
        raise _refused(index, None, name, f"the message has no {name}: its records would have no time")
    return _ms(getattr(message, name))


def _alert_ms(alert: Message, name: str) -> int | None:
    if not alert.HasField(name):
        return None
    timestamp = getattr(alert, name)
    if timestamp.seconds >= _SECONDS_THAT_ARE_MILLISECONDS:  # a firmware that wrote milliseconds as seconds
        return int(timestamp.seconds)
    return _ms(timestamp)


def _refused(index: int, datum: int | None, field: str, reason: str) -> ValidationError:
    where = f"message {index}" + (f" datum {datum}" if datum is not None else "")
    detail: dict[str, Any] = {"message": index, "field": field, "reason": reason}
    if datum is not None:
        detail["datum"] = datum
    return ValidationError(f"{where} field {field}: {reason}. Nothing from this request was stored.", details=[detail])
