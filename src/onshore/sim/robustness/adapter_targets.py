"""The decoders of the adapters added after the built-in ones, as fuzz targets (`adapter_targets`;
`onshore.sim.robustness.decoders` registers them beside the built-in targets):

* ``fleet_telemetry.protobuf``, ``fleet_telemetry.json``, ``fleet_telemetry.events``: `ft_targets`.
* ``mqtt.message``: one MQTT message, topic and payload: the fleet-telemetry dispatcher's layout
  (``<base>/<VIN>/v/<Field>``, alerts, errors, connectivity) and onshore's batch topic
  (``<base>/onshore/<VIN>/batch``), topics of no shape, of an unconfigured gateway, under no base; payloads as the
  dispatcher writes them, with one part hostile, mutated, oversize. It runs what `Batcher.take` runs, then admit
  and classify. An accepted message survives the bus; a ``v`` message is one datum of the topic's field.
* ``bus.message``: one message of a region's JetStream stream as a worker reads it (`open_message`): the bytes
  (batches and references, mutated and with one field changed) with their ``Nats-Msg-Id`` header, on the stream
  of their region or another. A refusal is a `BatchFormatError` (500: its sender is faulty) whose envelope names
  a receipt only when the bytes claim the id the header says; an accepted batch (or reference) is of the stream's
  region, reads back unchanged, and its envelope is its own.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec
from hypothesis import strategies as st

from onshore.config import IngestSettings
from onshore.errors import BatchFormatError, ForbiddenError, InputError
from onshore.ingest.batch import BatchRef, RecordBatch, decode_message
from onshore.ingest.fleet_telemetry.schema import AUDIENCES, CONNECTIVITY_STATUS, FIELD_NUMBERS
from onshore.ingest.mqtt.messages import ArrivalStamps, message_records
from onshore.ingest.mqtt.topics import MessageKind, TopicLayout, gateway_address
from onshore.sim.robustness import samples
from onshore.sim.robustness.decoder_targets import msgpack_with_one_changed, record_lists
from onshore.sim.robustness.ft_targets import LIMITS, QUIRKY_TEXT, VINS, admitted, fleet_telemetry_targets
from onshore.sim.robustness.fuzzing import DecoderTarget
from onshore.sim.robustness.strategies import EDGE_TEXT, EDGE_TIMES, edge_text, json_values, mutations_of, weighted

LAYOUT = TopicLayout("fz", {"fz-explicit/base": "gw"})
GATEWAYS = frozenset({"gw"})
MAX_MESSAGE_BYTES = 2048
_FIELDS = sorted(FIELD_NUMBERS)
_NAMES = st.sampled_from(["NotifyError", "BMS_a079", "x" * 128, "x" * 129, "é", "a b"]) | edge_text(40)
_VIN_LEVEL = st.sampled_from([v for v in VINS if v]) | st.sampled_from(["", " ", "+", "#", "lsvm0test00000001"])


def _rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_TIMES = st.integers(samples.NOW_MS // 1000 - 10**6, samples.NOW_MS // 1000).map(_rfc3339) | st.sampled_from(EDGE_TIMES)


def _topics() -> st.SearchStrategy[tuple[str, MessageKind]]:
    base = st.sampled_from(["fz/gw", "fz-explicit/base", "fz/other", "fz", "other/gw", "fz/gw/fz"])
    shapes = st.sampled_from(
        [
            (MessageKind.V, "{vin}/v/{name}"),
            (MessageKind.ALERT_CURRENT, "{vin}/alerts/{name}/current"),
            (MessageKind.ALERT_HISTORY, "{vin}/alerts/{name}/history"),
            (MessageKind.ERRORS, "{vin}/errors/{name}"),
            (MessageKind.CONNECTIVITY, "{vin}/connectivity"),
            (MessageKind.BATCH, "onshore/{vin}/batch"),
        ]
    )
    field = st.sampled_from(_FIELDS) | _NAMES

    def build(args: tuple[str, tuple[tuple[MessageKind, str], str], str, str]) -> tuple[str, MessageKind]:
        prefix, ((kind, shape), name), vin, suffix = args
        return f"{prefix}/{shape.format(vin=vin, name=name)}{suffix}", kind

    hostile_suffix = st.sampled_from(["", "", "", "", "", "", "", "/", "/extra", "//"])
    valid_base = st.sampled_from(["fz/gw", "fz-explicit/base"])
    named = shapes.flatmap(lambda s: st.tuples(st.just(s), field if s[0] is MessageKind.V else _NAMES))
    topic = st.tuples(valid_base, named, _VIN_LEVEL, hostile_suffix).map(build)
    hostile = st.tuples(base, named, _VIN_LEVEL, hostile_suffix).map(build)
    garbage = st.tuples(edge_text(80) | st.text(max_size=60), st.sampled_from(list(MessageKind)))
    # one in six a topic under another base, one in six no topic at all: most reach the payload's decoder
    return weighted((topic, 4), (hostile, 1), (garbage, 1))


def _dispatcher_values() -> st.SearchStrategy[Any]:
    position = st.fixed_dictionaries({"latitude": st.floats(-95, 95), "longitude": st.floats(-185, 185)})
    return st.one_of(
        st.floats(width=32) | st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.none(),
        st.sampled_from([*QUIRKY_TEXT, "<invalid>", "ShiftStateD", "WindowStateClosed"]),
        position,
        position.map(lambda p: {"value": p}),
        st.sampled_from([{}, {"front_left": True}, {"front_left": False}, {"semi_rear_axle_left": True}]),
        st.just(dict.fromkeys(["DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront"], True)),
        json_values(6),
    )


def _alert() -> st.SearchStrategy[dict[str, Any]]:
    audiences = st.lists(st.sampled_from([*AUDIENCES.values(), "7", "Nobody", ""]), max_size=3) | st.none()
    return st.fixed_dictionaries(
        {}, optional={"StartedAt": _TIMES, "EndedAt": _TIMES, "Audiences": audiences, "Name": _NAMES}
    )


def _event(kind: MessageKind) -> st.SearchStrategy[Any]:
    if kind is MessageKind.V:
        return _dispatcher_values()
    if kind is MessageKind.ALERT_CURRENT:
        return _alert()
    if kind is MessageKind.ALERT_HISTORY:
        return st.lists(_alert(), max_size=4) | st.lists(_alert(), min_size=LIMITS.max_batch_records + 1)
    if kind is MessageKind.ERRORS:
        tags = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=3)
        fields = {"Body": st.text(max_size=20), "Tags": tags, "CreatedAt": _TIMES, "Name": _NAMES}
        return st.fixed_dictionaries({}, optional=fields)
    if kind is MessageKind.CONNECTIVITY:
        status = st.sampled_from([*CONNECTIVITY_STATUS.values(), "CONNECTED", ""])
        optional = {"ConnectionId": edge_text(40), "CreatedAt": _TIMES, "NetworkInterface": st.just("wifi")}
        return st.fixed_dictionaries({"Status": status}, optional=optional)
    return record_lists()


def _with_key(document: Any) -> st.SearchStrategy[Any]:
    if not isinstance(document, dict):
        return st.just(document)
    extra = st.tuples(st.sampled_from(["Unknown", "body", "Started_At"]), json_values(3))
    return st.just(document) | st.just(document) | extra.map(lambda a: {**document, a[0]: a[1]})


def _mqtt_inputs() -> st.SearchStrategy[tuple[str, bytes, str | None]]:
    def payloads(kind: MessageKind) -> st.SearchStrategy[bytes]:
        # json.dumps writes integers past 64 bits, NaN and Infinity (no JSON): hostile as they are
        encoded = _event(kind).flatmap(_with_key).map(lambda v: json.dumps(v).encode())
        oversize = st.just(b"[" + b" " * MAX_MESSAGE_BYTES + b"]")
        return mutations_of(encoded, max_edits=2) | oversize

    content_types = st.sampled_from([None, None, "application/json", "application/x-ndjson", "text/csv"])
    return _topics().flatmap(lambda t: st.tuples(st.just(t[0]), payloads(t[1]), content_types))


def _mqtt_message(message: tuple[str, bytes, str | None]) -> tuple[Any, RecordBatch]:
    """What `onshore mqtt` does with one message before anything is stored: the topic's address (a configured
    gateway's), the payload's records, admit and classify."""
    topic, payload, content_type = message
    address = gateway_address(LAYOUT, topic, GATEWAYS)
    received = ArrivalStamps().stamp(address, samples.NOW_MS) if address.kind is MessageKind.V else samples.NOW_MS
    limits = IngestSettings(max_batch_records=LIMITS.max_batch_records)
    records = message_records(
        address, payload, received_ms=received, stamped_by="fz-mqtt-1", content_type=content_type, limits=limits,
        max_bytes=MAX_MESSAGE_BYTES,
    )  # fmt: skip
    if not records:
        raise InputError("the message holds no record")  # an empty history or batch: nothing to store either way
    return address, admitted(records)


def _mqtt_well_formed(_message: Any, result: tuple[Any, RecordBatch]) -> None:
    from onshore.ingest.batch import decode

    address, batch = result
    assert decode(batch.encode()) == batch, "an admitted MQTT batch does not survive the bus"
    if address.kind is MessageKind.V:
        assert batch.signals == [address.name], "a v message is one datum of the topic's field"
        assert batch.msg_ids[0].endswith(":fz-mqtt-1"), "a v datum's id names the process that stamped it"
    assert address.gateway in GATEWAYS


def _bus_inputs() -> st.SearchStrategy[tuple[bytes, dict[str, str] | None, str]]:
    sent: list[Any] = [*samples.batches()]
    first = sent[0]
    sent.append(BatchRef(vehicle=first.vehicle, received_ms=first.received_ms, size=512, sha256="0" * 64))
    as_fields = st.sampled_from([msgspec.msgpack.decode(b.encode()) for b in sent])
    names = st.sampled_from(["batch_id", "vehicle", "version", "kind", "size", "sha256", "msg_ids", "meta"])
    ids = st.sampled_from(["f" * 32, "F" * 32, "f" * 31, "g" * 32, "../" * 11])
    values = json_values(6) | ids | st.binary(max_size=16)
    data = mutations_of(st.sampled_from([b.encode() for b in sent])) | st.tuples(as_fields, names, values).map(
        msgpack_with_one_changed
    )

    def headers_for(raw: bytes) -> st.SearchStrategy[dict[str, str] | None]:
        try:
            own = msgspec.msgpack.decode(raw).get("batch_id")
        except (msgspec.DecodeError, AttributeError):
            own = None
        ids = st.sampled_from([own if isinstance(own, str) else "", "0" * 32]) | st.sampled_from(EDGE_TEXT)
        return st.none() | ids.map(lambda i: {"Nats-Msg-Id": i}) | st.dictionaries(st.text(max_size=12), st.text())

    regions = st.sampled_from(["cn", "cn", "eu", ""])
    return data.flatmap(lambda raw: st.tuples(st.just(raw), headers_for(raw), regions))


def _bus_message(message: tuple[bytes, dict[str, str] | None, str]) -> Any:
    from onshore.worker import open_message

    data, headers, region = message
    envelope, batch = open_message(data, headers, region)
    if isinstance(batch, BatchFormatError):
        raise batch
    return envelope, batch


def _bus_well_formed(message: tuple[bytes, dict[str, str] | None, str], result: Any) -> None:
    envelope, batch = result
    assert envelope.batch_id == batch.batch_id and envelope.owner == batch.vehicle.ref
    assert batch.vehicle.region == message[2], "a batch of another region was taken"
    assert decode_message(batch.encode()) == batch, "an accepted bus message does not read back"


def adapter_targets() -> list[DecoderTarget]:
    """A fresh target for every adapter decoder (see the module docstring)."""
    return [
        *fleet_telemetry_targets(),
        DecoderTarget(
            "mqtt.message", _mqtt_inputs(), _mqtt_message, (InputError, ForbiddenError), check=_mqtt_well_formed
        ),
        DecoderTarget(
            "bus.message",
            _bus_inputs(),
            _bus_message,
            (BatchFormatError,),
            statuses=(500, 501),
            check=_bus_well_formed,
        ),  # fmt: skip
    ]
