"""One MQTT message as onshore records: the fleet-telemetry dispatcher's per-datum messages, and onshore batches.

Every record is the one the fleet-telemetry HTTP route (`onshore.ingest.fleet_telemetry.records`) or onshore's
own JSON makes for the same datum, so the same data stores the same rows by every path. What the dispatcher
leaves out is taken from the message's arrival:

* A ``v/<Field>`` message carries the value only: upstream's dispatcher drops the payload's ``created_at``.
  Its time is the moment onshore received it (`ArrivalStamps`: one vehicle's datums of one field get strictly
  increasing times, so a backlog the broker sends in one burst keeps its order and every datum), and its
  message id ``V:<ms>:<Field>:<client id>`` (two processes of a share group never make the same id). A datum
  redelivered after a crash between commit and acknowledgement therefore comes again with another time:
  per-field messages are stored *at least* once. Alerts, errors, connectivity events and onshore batches
  carry their own times and ids, and are stored exactly once.
* The dispatcher writes times as RFC 3339 in whole seconds, and no network interface for connectivity events.
* An alert's name and an error's name come from the topic.

Nothing here echoes a value or a VIN in an error: refusals name the field and the reason.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from onshore.config import IngestSettings
from onshore.errors import InputError, PayloadTooLargeError, ValidationError
from onshore.ingest.fleet_telemetry.records import alert_record, connectivity_record, error_record, field_record
from onshore.ingest.fleet_telemetry.schema import AUDIENCES, CONNECTIVITY_STATUS, FIELD_NUMBERS
from onshore.ingest.fleet_telemetry.values import dispatcher_value
from onshore.ingest.mqtt.topics import MessageKind, TopicAddress
from onshore.pipeline.admit import JSON_TYPES, WireRecord, decode_body, parse_ts

_NAME = msgspec.Meta(max_length=128)
_AUDIENCES = frozenset(AUDIENCES.values())
_STATUSES = frozenset(CONNECTIVITY_STATUS.values())


class _Alert(msgspec.Struct, forbid_unknown_fields=True, rename="pascal"):
    started_at: str | None = None
    ended_at: str | None = None
    audiences: list[str] | None = None
    name: str | None = None  # upstream's README shows it; its code puts the name in the topic only


class _Error(msgspec.Struct, forbid_unknown_fields=True, rename="pascal"):
    body: str = ""
    tags: dict[str, str] | None = None
    created_at: str | None = None
    name: str | None = None


class _Connectivity(msgspec.Struct, forbid_unknown_fields=True, rename="pascal"):
    status: str
    connection_id: str = ""
    created_at: str | None = None
    network_interface: str = ""


_ALERT = msgspec.json.Decoder(_Alert)
_HISTORY = msgspec.json.Decoder(list[_Alert])
_ERROR = msgspec.json.Decoder(_Error)
_CONNECTIVITY = msgspec.json.Decoder(_Connectivity)


class ArrivalStamps:
    """Arrival times for datums that carry none: strictly increasing per (gateway, VIN, field) in this process."""

    _PRUNE_AT = 100_000

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], int] = {}

    def stamp(self, address: TopicAddress, received_ms: int) -> int:
        """``received_ms``, or one millisecond after the last stamp of the same datum when that is later."""
        key = (address.gateway, address.vin, address.name)
        last = self._last.get(key)
        ts = received_ms if last is None or last < received_ms else last + 1
        if len(self._last) >= self._PRUNE_AT:  # a stamp before this arrival can never collide with a later one
            self._last = {k: v for k, v in self._last.items() if v >= received_ms}
        self._last[key] = ts
        return ts


def message_records(
    address: TopicAddress,
    payload: bytes,
    *,
    received_ms: int,
    stamped_by: str,
    content_type: str | None,
    limits: IngestSettings,
    max_bytes: int,
) -> list[WireRecord]:
    """The records of one message (see the module docstring for what each topic becomes).

    Args:
        received_ms: when onshore received it: the time of a datum whose message carries none (for ``v``
            messages, from `ArrivalStamps`).
        stamped_by: this process's MQTT client id (part of a ``v`` datum's message id).
        content_type: the message's MQTT 5 content type, if the publisher set one (onshore batches:
            ``application/json`` or ``application/x-ndjson``; without it a payload starting with ``[`` is JSON).
        max_bytes: ``mqtt.max_message_bytes``.

    Raises:
        PayloadTooLargeError (413): a payload over ``max_bytes`` (or a batch over ``ingest.max_body_bytes``, or
            more than ``ingest.max_batch_records`` records).
        InputError (400): a payload that is no JSON; an empty one.
        ValidationError (422): a field this onshore does not know, a value or object of the wrong shape, an
            unknown key, a time that is no RFC 3339 time.
    """
    if len(payload) > max_bytes:
        raise PayloadTooLargeError(
            f"the payload is {len(payload)} bytes; the limit is {max_bytes} (mqtt.max_message_bytes)"
        )
    kind = address.kind
    if kind is MessageKind.BATCH:
        return decode_body(payload, content_type or _sniffed_type(payload), limits)
    if not payload.strip():
        raise InputError(f"the {kind.value} message is empty: its payload must be JSON")
    if kind is MessageKind.V:
        return [_datum(address, payload, received_ms, stamped_by)]
    name = _topic_name(address)
    if kind is MessageKind.ALERT_CURRENT:
        return [_alert(name, _decoded(_ALERT, payload, kind), received_ms)]
    if kind is MessageKind.ALERT_HISTORY:
        history = _decoded(_HISTORY, payload, kind)
        if len(history) > limits.max_batch_records:
            raise PayloadTooLargeError(
                f"the alert history has {len(history)} alerts; the limit is {limits.max_batch_records} "
                "(ingest.max_batch_records)"
            )
        return [_alert(name, alert, received_ms) for alert in history]
    if kind is MessageKind.ERRORS:
        error = _decoded(_ERROR, payload, kind)
        _same_name(error.name, name)
        return [error_record(name, error.body, error.tags or {}, _time(error.created_at, "CreatedAt", received_ms))]
    event = _decoded(_CONNECTIVITY, payload, kind)
    if event.status not in _STATUSES:
        raise _refused("Status", f"must be one of {', '.join(sorted(_STATUSES))}")
    ts = _time(event.created_at, "CreatedAt", received_ms)
    return [connectivity_record(event.connection_id, event.status, event.network_interface, ts)]


def _datum(address: TopicAddress, payload: bytes, received_ms: int, stamped_by: str) -> WireRecord:
    field = address.name
    if field not in FIELD_NUMBERS:
        shown = field if len(field) <= 64 and field.isidentifier() else "(not a name)"
        reason = f"{shown} is not a fleet-telemetry field this onshore knows; upgrade onshore or leave it out"
        raise ValidationError(
            f"the topic's field {reason}. Nothing from this message was stored.",
            details=[{"field": "topic", "reason": reason}],
        )
    value = _json(payload, MessageKind.V)
    # upstream's first MQTT dispatcher wrapped each value as {"value": ...}; no stored form has that one key
    if type(value) is dict and value.keys() == {"value"}:
        value = value["value"]
    return field_record(field, dispatcher_value(value, address.vin), received_ms, stamped_by=stamped_by)


def _alert(name: str, alert: _Alert, received_ms: int) -> WireRecord:
    _same_name(alert.name, name)
    audiences = alert.audiences or []
    if any(a not in _AUDIENCES and not a.isdigit() for a in audiences):
        raise _refused("Audiences", f"must name audiences of {', '.join(sorted(_AUDIENCES))}")
    started = _time(alert.started_at, "StartedAt", None)
    ended = _time(alert.ended_at, "EndedAt", None)
    return alert_record(name, audiences, started, ended, received_ms)


def _topic_name(address: TopicAddress) -> str:
    name = address.name
    if address.kind is MessageKind.CONNECTIVITY:
        return name
    if len(name) > 128:
        raise _refused("topic", "the name level of the topic is longer than 128 characters")
    return name


def _same_name(named: str | None, topic_name: str) -> None:
    if named is not None and named != topic_name:
        raise _refused("Name", "names another alert or error than the topic")


def _time(text: str | None, field: str, default: int | None) -> Any:
    if text is None:
        return default
    ts = parse_ts(text)
    if ts is None:
        raise _refused(field, "must be an RFC 3339 time with a zone")
    return ts


def _json(payload: bytes, kind: MessageKind) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise InputError(f"the {kind.value} message's {len(payload)} bytes are not JSON") from None


def _decoded(decoder: msgspec.json.Decoder[Any], payload: bytes, kind: MessageKind) -> Any:
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        reason, _, path = str(exc).partition(" - at `")
        raise _refused(path.rstrip("`").lstrip("$.") or kind.value, reason) from None
    except msgspec.DecodeError:
        raise InputError(f"the {kind.value} message's {len(payload)} bytes are not JSON") from None


def _sniffed_type(payload: bytes) -> str:
    return JSON_TYPES[0] if payload.lstrip()[:1] == b"[" else "application/x-ndjson"


def _refused(field: str, reason: str) -> ValidationError:
    return ValidationError(
        f"field {field}: {reason}. Nothing from this message was stored.", details=[{"field": field, "reason": reason}]
    )
