"""Decode a fleet-telemetry request body: one protobuf message, or the JSON form of one or many.

* ``application/x-protobuf`` (also ``application/protobuf``): exactly one message of the record type, at most
  ``ingest.max_protobuf_bytes`` (upstream's server refuses vehicle frames over 1,000,000 bytes).
* ``application/json``: one message in protobuf's JSON mapping (what upstream's JSON dispatchers and logs write:
  ``{"data": [{"key": "VehicleSpeed", "value": {"doubleValue": 42.5}}], "createdAt": "...Z", "vin": "..."}``;
  original field names are read too), or a JSON array of them.
* ``application/x-ndjson``: one such message per line.

**Unknown fields are refused.** proto3 keeps fields a reader does not know (a newer upstream schema: a new value
case, a new payload field) as unknown fields, and upstream's Go server would dispatch them on. onshore cannot
classify what it cannot read, and silently dropping a datum would lose data the vehicle sent, so a message with
an unknown field anywhere is refused (422, naming the message type and field number): upgrade onshore. A field
*number* of the `Field` enum that this schema does not name is refused the same way (`records`). An enum *value*
this schema does not name (a new gear, a new charger type) is kept as its number: the datum is still read.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from google.protobuf import json_format, unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from onshore.config import IngestSettings
from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.ingest.fleet_telemetry.records import VehicleMessage, message_records
from onshore.ingest.fleet_telemetry.schema import MESSAGES, RecordType
from onshore.pipeline.admit import JSON_TYPES, NDJSON_TYPES

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_PATH = re.compile(r" at ([A-Za-z_][\w.\[\]]*)")
_NAMED = re.compile(r'has no field named "([a-z][A-Za-z0-9_]{0,40})"')


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header (``application/json`` when absent)."""
    return (content_type or "application/json").split(";")[0].strip().lower()


def decode_request(
    body: bytes, content_type: str | None, kind: RecordType, limits: IngestSettings
) -> list[VehicleMessage]:
    """Every message of ``body``, as records (see the module docstring for the accepted forms).

    Raises:
        UnsupportedMediaTypeError (415): another content type.
        PayloadTooLargeError (413): a protobuf body over ``ingest.max_protobuf_bytes``, a JSON body over
            ``ingest.max_body_bytes``, or more than ``ingest.max_batch_records`` messages.
        InputError (400): an empty body, bytes that are no message, malformed JSON.
        ValidationError (422): a message with an unknown field, a field of the wrong type, no time, or a value
            with no stored form. Messages name the place, never a value.
    """
    media = media_type(content_type)
    if media in PROTOBUF_TYPES:
        if len(body) > limits.max_protobuf_bytes:
            raise PayloadTooLargeError(
                f"body is {len(body)} bytes; one fleet-telemetry message may have {limits.max_protobuf_bytes} "
                "(ingest.max_protobuf_bytes)"
            )
        if not body:
            raise InputError("body is empty: send one serialised fleet-telemetry message")
        return [message_records(kind, parse_protobuf(body, kind), 0)]
    if media in JSON_TYPES or media in NDJSON_TYPES:
        if len(body) > limits.max_body_bytes:
            raise PayloadTooLargeError(
                f"body is {len(body)} bytes; the limit is {limits.max_body_bytes} (ingest.max_body_bytes)"
            )
        documents = _json_documents(body, media in NDJSON_TYPES)
        if len(documents) > limits.max_batch_records:
            raise PayloadTooLargeError(
                f"body has {len(documents)} messages; the limit is {limits.max_batch_records} "
                "(ingest.max_batch_records): split it"
            )
        return [message_records(kind, parse_json(doc, kind, i), i) for i, doc in enumerate(documents)]
    raise UnsupportedMediaTypeError(
        f"content type {media!r} is not accepted here; send application/x-protobuf (one message), "
        "application/json or application/x-ndjson"
    )


def parse_protobuf(data: bytes, kind: RecordType) -> Message:
    """One message of record type ``kind`` from its wire bytes.

    Raises:
        InputError (400): the bytes are not such a message. ValidationError (422): it has an unknown field.
    """
    cls = MESSAGES[kind]
    try:
        message = cls.FromString(data)
    except DecodeError:
        raise InputError(
            f"{len(data)} bytes are not a fleet-telemetry {cls.DESCRIPTOR.name} (record type {kind.value}): "
            "the protobuf wire format is corrupt or it is another message"
        ) from None
    size = message.ByteSize()
    message.DiscardUnknownFields()
    if message.ByteSize() != size:
        where, number = _first_unknown(cls.FromString(data), cls.DESCRIPTOR.name)
        reason = (
            f"{where} has field number {number}, which this onshore's fleet-telemetry schema does not know "
            "(a newer upstream schema?): nothing was read; upgrade onshore"
        )
        raise ValidationError(
            f"{reason}. Nothing from this request was stored.",
            details=[{"message": 0, "field": where, "field_number": number, "reason": reason}],
        )
    return message


def parse_json(document: Any, kind: RecordType, index: int = 0) -> Message:
    """One message of record type ``kind`` from its protobuf-JSON form (already parsed from text).

    Raises:
        ValidationError (422): not an object, an unknown field, a value of the wrong type, an unknown enum name.
    """
    cls = MESSAGES[kind]
    if not isinstance(document, dict):
        raise _json_refusal(index, "", f"must be a JSON object (a {cls.DESCRIPTOR.name}), not {_kind(document)}")
    try:
        return json_format.ParseDict(document, cls(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise _json_refusal(index, *_json_reason(str(exc), cls.DESCRIPTOR.name)) from None
    except (TypeError, ValueError, OverflowError, RecursionError):  # the parser's own limits
        raise _json_refusal(index, "", f"is not a {cls.DESCRIPTOR.name} in protobuf's JSON form") from None


def _json_documents(body: bytes, ndjson: bool) -> list[Any]:
    if ndjson:
        documents = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if line.strip():
                try:
                    documents.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"line {number} is not valid JSON: {exc}") from None
    else:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"body is not valid JSON: {exc}") from None
        documents = parsed if isinstance(parsed, list) else [parsed]
    if not documents:
        raise InputError("body holds no message: send at least one")
    return documents


def _first_unknown(message: Message, path: str) -> tuple[str, int]:
    """Where the first unknown field is, as ``(path, field number)`` (the error path only)."""
    found = list(unknown_fields.UnknownFieldSet(message))
    if found:
        return path, found[0].field_number
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.GetOptions().map_entry:
            continue
        items = value if field.is_repeated else [value]
        for position, item in enumerate(items):
            label = f"{path}.{field.name}" + (f"[{position}]" if field.is_repeated else "")
            where, number = _first_unknown(item, label)
            if number:
                return where, number
    return path, 0


def _json_reason(text: str, message_name: str) -> tuple[str, str]:
    """``(place, reason)`` of a JSON parse error, without the values it may quote."""
    paths = _PATH.findall(text)
    place = paths[-1].rstrip(".") if paths else message_name
    if "has no field named" in text:
        named = _NAMED.search(text)
        what = f"field {named.group(1)!r}" if named else "a field"
        return place, f"has {what}, which this onshore's fleet-telemetry schema does not know"
    if "Invalid enum value" in text:
        return place, "names an enum value this onshore's fleet-telemetry schema does not know"
    return place, "has a value of the wrong type or out of range"


def _json_refusal(index: int, place: str, reason: str) -> ValidationError:
    where = f"message {index}" + (f" ({place})" if place else "")
    return ValidationError(
        f"{where} {reason}. Nothing from this request was stored.",
        details=[{"message": index, "field": place, "reason": reason}],
    )


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
