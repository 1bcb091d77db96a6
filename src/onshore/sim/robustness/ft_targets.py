"""The fleet-telemetry decoders as fuzz targets: ``POST /v1/ingest/fleet-telemetry``'s bodies, from the bytes to the
classified batch (`fleet_telemetry_targets`; `onshore.sim.robustness.decoders` registers them).

Messages are drawn from the schema's own descriptors (`messages`), so every record type, every field number of
`Field` and every value case is reached, with the numbers at their edges, enum numbers the schema does not name,
numbers and positions as text (the firmware quirks classify must read), times at the ends of the calendar and
synthetic VINs only. They are then sent as they are, mutated byte by byte, with a field of a number the schema
lacks, over the size limit, and in their JSON form with one part made hostile.

A body runs what the route runs before anything is stored: `decode_request`, admit of each message's records,
classify under the CN pack. A refusal must be a 4xx in the API's error shape; what is accepted must survive the
bus, keep every datum (one record each, or counted a duplicate), and a protobuf message accepted must give the
same records from its JSON form (the two forms of one message store the same rows).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from onshore.config import IngestSettings
from onshore.errors import InputError
from onshore.ingest.batch import RecordBatch
from onshore.ingest.fleet_telemetry.decode import decode_request
from onshore.ingest.fleet_telemetry.schema import FIELD_NAMES, MESSAGES, RecordType
from onshore.pipeline.admit import WireRecord
from onshore.sim.robustness import samples
from onshore.sim.robustness.fuzzing import DecoderTarget
from onshore.sim.robustness.strategies import EDGE_INTS, EDGE_TEXT, edge_text, json_values, mutations_of, weighted

# Small limits, so that the draws reach past them (the defaults are a megabyte and 5,000 messages).
LIMITS = IngestSettings(max_protobuf_bytes=4096, max_body_bytes=64 * 1024, max_batch_records=40)
# Synthetic VINs (a test manufacturer code; a Semi's 4th character is T), as the tests use.
VINS = ("", "LSVM0TEST00000001", "LSVM0TEST00000002", "5YJT0TEST00000003")
# Text a string value takes: numbers and positions as firmware writes them, and text at its edges.
QUIRKY_TEXT = (
    "42.5", "-0", "1e308", "1e400", "NaN", "inf", " 42 ", "0x10", "1_000", "4,2", "١٢",
    "(26.647012 N, 106.630245 E)", "(37.412374 N, 122.145867 W)", "26.6 S, 106.6 E", "(91.0 N, 0 E)",
    "(26.6 N, 181 E)", "(26.6 X, 106.6 E)", "(N, E)", "26.6,106.6", "07:30:00", "24:00:00",
)  # fmt: skip
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_TIMESTAMP = "google.protobuf.Timestamp"
_FIELD_NUMBERS = sorted(FIELD_NAMES)
_EVENT_KINDS = (RecordType.ALERTS, RecordType.ERRORS, RecordType.CONNECTIVITY)


# Strategies are built once (module constants, `functools.cache`): hypothesis validates every new strategy, and
# building them per draw spent most of a run doing that.
_TEXT = st.sampled_from(QUIRKY_TEXT) | st.sampled_from(EDGE_TEXT) | st.text(max_size=24)
_RECENT_S = st.integers(samples.NOW_MS // 1000 - 10**6, samples.NOW_MS // 1000)
_EDGE_S = st.sampled_from([-62135596801, -62135596800, -1, 0, 253402300799, 253402300800, 315576000000, 2**62])
# (seconds, nanos): mostly the last days, sometimes the ends of the calendar and past them
_TIMESTAMPS = st.tuples(
    st.integers(0, 3).flatmap(lambda i: _EDGE_S if i == 0 else _RECENT_S),
    st.integers(0, 7).flatmap(lambda i: st.sampled_from([-1, 10**9]) if i == 0 else st.integers(0, 999_999_999)),
)
_MAPS = st.dictionaries(_TEXT, _TEXT, max_size=3)


@functools.cache
def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        low, high = _INT_RANGES[cpp]
        return st.integers(low, high) | st.sampled_from([i for i in EDGE_INTS if low <= i <= high])
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return st.floats() | st.sampled_from([0.0, -0.0, 26.6, 106.6, 91.0, -181.0, 1e308])
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return st.floats(width=32)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return st.booleans()
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        if field.enum_type.full_name == "telemetry.vehicle_data.Field":
            return st.sampled_from(_FIELD_NUMBERS) | st.sampled_from([max(_FIELD_NUMBERS) + 1, 2**31 - 1, -1])
        known = [v.number for v in field.enum_type.values]
        return st.sampled_from(known) | st.sampled_from(known) | st.integers(-(2**31), 2**31 - 1)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=16)
    if field.name == "vin":
        return st.sampled_from(VINS) | edge_text(40)
    return _TEXT


@functools.cache
def _oneof_cases(oneof: Any) -> st.SearchStrategy[FieldDescriptor | None]:
    return st.sampled_from([None, *oneof.fields])


def _fill(draw: st.DrawFn, message: Message) -> Message:
    """Set some of ``message``'s fields (one case of each oneof, a few entries of each repeated field)."""
    descriptor: Descriptor = message.DESCRIPTOR
    if descriptor.full_name == _TIMESTAMP:
        message.seconds, message.nanos = draw(_TIMESTAMPS)
        return message
    chosen = {oneof.name: draw(_oneof_cases(oneof)) for oneof in descriptor.oneofs}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] is not field:
            continue
        present = oneof is not None or field.name == "created_at" or draw(st.integers(0, 3)) > 0
        if not present:
            continue
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target.update(draw(_MAPS))
        elif field.is_repeated and field.message_type is not None:
            for _ in range(draw(st.integers(0, 6 if field.name == "data" else 3))):
                _fill(draw, target.add())
        elif field.is_repeated:
            target.extend(draw(_lists(field)))
        elif field.message_type is not None:
            target.SetInParent()
            _fill(draw, target)
        else:
            setattr(message, field.name, draw(_scalar(field)))
    return message


@functools.cache
def _lists(field: FieldDescriptor) -> st.SearchStrategy[list[Any]]:
    return st.lists(_scalar(field), max_size=3)


@st.composite
def _messages(draw: st.DrawFn, kind: RecordType) -> Message:
    return _fill(draw, MESSAGES[kind]())


@functools.cache
def messages(kind: RecordType) -> st.SearchStrategy[Message]:
    """Messages of record type ``kind`` drawn from the schema's descriptors (see the module docstring)."""
    return _messages(kind)


def with_unknown_field(data: bytes, number: int, wire_type: int = 2) -> bytes:
    """``data`` with a field ``number`` appended at the top level: one this schema lacks, for a large number."""
    value = {0: b"\x01", 1: b"\x00" * 8, 2: b"\x01A", 5: b"\x00" * 4}[wire_type]
    return data + varint(number << 3 | wire_type) + value


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


_PROTOBUF_TYPES = st.sampled_from(
    ["application/x-protobuf"] * 4 + ["application/protobuf; charset=binary", "text/plain"]
)
_JSON_TYPES = st.sampled_from(["application/json", "application/x-ndjson", "application/json; charset=utf-8"])


@functools.cache
def _protobuf_bodies_of(kind: RecordType) -> st.SearchStrategy[tuple[bytes, str, RecordType]]:
    wire = messages(kind).map(lambda m: m.SerializeToString())
    unknown = st.tuples(wire, st.integers(20, 2**29 - 1), st.sampled_from([0, 1, 2, 5]))
    oversize = wire.map(lambda b: b + b"\x00" * (LIMITS.max_protobuf_bytes + 1 - len(b)))
    # one body in six with a field the schema lacks, one in twelve over the limit
    bodies = weighted((mutations_of(wire), 9), (unknown.map(lambda a: with_unknown_field(*a)), 2), (oversize, 1))
    return st.tuples(bodies, _PROTOBUF_TYPES, st.just(kind))


def _protobuf_bodies(kinds: tuple[RecordType, ...]) -> st.SearchStrategy[tuple[bytes, str, RecordType]]:
    return st.sampled_from(kinds).flatmap(_protobuf_bodies_of)


def _as_json(message: Message, original_names: bool) -> Any:
    try:
        return json_format.MessageToDict(message, preserving_proto_field_name=original_names)
    except json_format.Error:  # a time outside the calendar has no JSON form
        return {"vin": "LSVM0TEST00000001"}


_JSON_VALUES = json_values(6)
_ADDED_KEYS = st.sampled_from(["unknownField", "vin ", "createdAt", "data", "x" * 41])
_HOSTILE_DATUMS = st.sampled_from(
    [
        {"key": "VehicleSpeed", "value": {"doubleValue": "42.5"}},
        {"key": "VehicleSpeed", "value": {"stringValue": 42.5}},
        {"key": "Location", "value": {"locationValue": {"latitude": "26.6", "longitude": 106.6}}},
        {"key": "Location", "value": {"stringValue": "(26.647012 N, 106.630245 E)"}},
        {"key": 5, "value": {"longValue": "9223372036854775808"}},
        {"key": "NoSuchField", "value": {"intValue": 1}},
        {"key": "Gear", "value": {"shiftStateValue": "ShiftStateNoSuch"}},
        {"key": "Soc", "value": {"floatValue": "Infinity"}},
        {"key": "Soc", "value": {}},
    ]
)


@st.composite
def _json_documents(draw: st.DrawFn, kind: RecordType) -> Any:
    """A message's JSON form (either field naming) with one part changed: a value replaced, a key added, a
    hostile datum (numbers as text, positions as text, unknown names), or as it is."""
    document = _as_json(draw(messages(kind)), draw(st.booleans()))
    change = draw(st.integers(0, 3))
    if not isinstance(document, dict) or not document or change == 0:
        return document
    if change == 1:
        return {**document, draw(st.sampled_from(sorted(document))): draw(_JSON_VALUES)}
    if change == 2:
        return {**document, draw(_ADDED_KEYS): draw(_JSON_VALUES)}
    return {**document, "data": [*document.get("data", []), draw(_HOSTILE_DATUMS)]}


def _encoded(docs: list[Any], media: str) -> bytes:
    # json.dumps writes integers past 64 bits, NaN and Infinity (no JSON): hostile as they are
    if media == "application/x-ndjson":
        return b"\n".join(json.dumps(d).encode() for d in docs)
    return json.dumps(docs if len(docs) > 1 else docs[0]).encode()


@functools.cache
def _json_bodies_of(kind: RecordType) -> st.SearchStrategy[tuple[bytes, str, RecordType]]:
    pairs = st.tuples(st.lists(_json_documents(kind), min_size=1, max_size=4), _JSON_TYPES)
    bodies = pairs.flatmap(lambda a: st.tuples(_mutated_sometimes(_encoded(*a)), st.just(a[1])))
    return st.tuples(bodies, st.just(kind)).map(lambda a: (a[0][0], a[0][1], a[1]))


def _mutated_sometimes(body: bytes) -> st.SearchStrategy[bytes]:
    """``body`` as it is two times in three (the JSON form's hostility is in its documents), else mutated."""
    return weighted((st.just(body), 2), (mutations_of(st.just(body), max_edits=2), 1))


def _json_bodies(kinds: tuple[RecordType, ...]) -> st.SearchStrategy[tuple[bytes, str, RecordType]]:
    return st.sampled_from(kinds).flatmap(_json_bodies_of)


@functools.cache
def _cn_pack() -> Any:
    from onshore.config import RulesSettings
    from onshore.rules.loader import RuleBook

    return RuleBook.load(RulesSettings().packs).for_jurisdiction("CN")


def ingest(body: tuple[bytes, str, RecordType]) -> list[tuple[list[WireRecord], RecordBatch]]:
    """What the route does with a body before anything is stored: decode, admit per message, classify.
    Returns each message's records with its admitted batch (messages without records are left out, as the route
    leaves them out)."""
    data, content_type, kind = body
    messages = decode_request(data, content_type, kind, LIMITS)
    return [(m.records, admitted(m.records)) for m in messages if m.records]


def admitted(records: list[WireRecord]) -> RecordBatch:
    """``records`` admitted as one vehicle's batch and classified under the CN pack (what an adapter's records go
    through before anything is stored)."""
    from onshore.pipeline.admit import admit
    from onshore.pipeline.classify import classify

    batch = admit(records, samples.VEHICLE, LIMITS, now_ms=samples.NOW_MS)
    classify(batch.signal_batch(), _cn_pack())
    return batch


def keeps_every_datum(body: tuple[bytes, str, RecordType], result: list[tuple[list[WireRecord], RecordBatch]]) -> None:
    """Every accepted batch survives the bus and keeps each datum (stored, or counted a duplicate in the batch);
    a protobuf message gives the same records from its JSON form."""
    from onshore.ingest.batch import decode

    for records, batch in result:
        assert decode(batch.encode()) == batch, "an admitted fleet-telemetry batch does not survive the bus"
        assert len(batch) + batch.duplicates_in_batch == len(records), "a datum was lost at admit"
        assert batch.received == len(records)
    data, content_type, kind = body
    if content_type.startswith("application/x-protobuf") or content_type.startswith("application/protobuf"):
        message = MESSAGES[kind].FromString(data)
        try:
            as_json = orjson.dumps(json_format.MessageToDict(message))
        except json_format.SerializeToJsonError:  # a time protobuf can carry and RFC 3339 cannot write (nanos
            return  # out of range, read as Go reads them); nothing to compare with
        again = decode_request(as_json, "application/json", kind, LIMITS)
        assert [m.records for m in again if m.records] == [r for r, _ in result], "the JSON form reads otherwise"


def fleet_telemetry_targets() -> list[DecoderTarget]:
    """A fresh target for each fleet-telemetry decoder: ``V`` payloads as protobuf and as JSON, and the alerts,
    errors and connectivity record types in both forms."""
    v = (RecordType.V,)
    return [
        DecoderTarget("fleet_telemetry.protobuf", _protobuf_bodies(v), ingest, (InputError,), check=keeps_every_datum),
        DecoderTarget("fleet_telemetry.json", _json_bodies(v), ingest, (InputError,), check=keeps_every_datum),
        DecoderTarget(
            "fleet_telemetry.events",
            _protobuf_bodies(_EVENT_KINDS) | _json_bodies(_EVENT_KINDS),
            ingest,
            (InputError,),
            check=keeps_every_datum,
        ),
    ]
