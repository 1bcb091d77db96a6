"""Admitted batches: what *admit* hands over the ingest bus and *process* takes from it.

Admit (authenticate, validate, decode) ends in one of two typed batches; process (classify, minimise, store,
ledger) starts from one. Between them sits a bus (`onshore.ingest.bus`): in one process a direct call, across
processes a message queue. So a batch carries everything process needs and nothing it must not see:

* `RecordBatch`: one vehicle's admitted signal records as parallel columns, after the shape, time and size
  checks and the in-batch de-duplication, with the counts only admit knows (records received, duplicates).
* `FrameBatch`: one camera frame after the strict header checks (format by magic bytes, size, pixels,
  completeness), with its metadata and the image bytes as sent.

The vehicle travels as its pseudonym, market and region (`Vehicle`), taken from the authenticated token at
admit: the VIN never crosses. ``encode`` writes MessagePack; `decode` reads it back and refuses, with a
`BatchFormatError`, bytes that are not a batch or a batch of another ``version`` (a worker and a gateway of
different releases). Change a field and ``BATCH_VERSION`` goes up, so an old worker refuses a new batch
instead of misreading it. A batch off a bus is held to admit's own invariants (64-bit times, message ids, signal
names and purposes of admit's patterns, JSON values of 64-bit integers and finite numbers, counts that add up),
so bytes no admit could have written are refused here, before any stage or database sees them.

A message queue limits its messages (NATS: 1 MiB by default) and a camera frame may be 20 MiB, so a bus may carry
a `BatchRef` instead: the batch's id, whose it is, and the size and SHA-256 of its ``encode()`` bytes, which lie in
the bus's payload store under the batch id (`onshore.ingest.jetstream`). `decode_message` reads either; `decode`
only a batch. Version 2 added `BatchRef`: a version-1 worker refuses a version-2 message by its version.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Annotated, Any

import msgspec

from onshore.errors import BatchFormatError
from onshore.model import SignalBatch, Vehicle
from onshore.rules.base import SIGNAL_NAME

BATCH_VERSION = 2
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# \Z, not $: `$` also matches before a trailing newline, so "m1\n" would pass as a message id.
MSG_ID_PATTERN = r"^[A-Za-z0-9._:\-]+\Z"
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,63}\Z"
SIGNAL_PATTERN = SIGNAL_NAME.pattern.removesuffix("$") + r"\Z"
MAX_VALUE_DEPTH = 200  # the most ingest.max_value_depth allows: deeper values never leave admit

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
MsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=MSG_ID_PATTERN)]
SignalName = Annotated[str, msgspec.Meta(max_length=200, pattern=SIGNAL_PATTERN)]
Purpose = Annotated[str, msgspec.Meta(pattern=PURPOSE_PATTERN)]
Profile = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Batch(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """What every admitted batch says: whose it is and when it arrived."""

    version: int = BATCH_VERSION
    # One admission: the bus's message id (a retried publish is de-duplicated) and the receipt a gateway answers.
    batch_id: str = msgspec.field(default_factory=lambda: secrets.token_hex(16))
    # The authenticated vehicle: its region-keyed pseudonym, its market (the origin of its data), its region.
    vehicle: Vehicle
    received_ms: Int64  # when admit took the batch: the processing time of every stage after it

    def encode(self) -> bytes:
        """The batch as MessagePack, the form a bus carries; `decode` reads it back."""
        return msgspec.msgpack.encode(self)


class RecordBatch(_Batch, frozen=True, kw_only=True, tag="records"):
    """One vehicle's admitted signal records, column by column (index ``i`` of each list is record ``i``)."""

    msg_ids: list[MsgId]
    ts_ms: list[Int64]
    signals: list[SignalName]
    values: list[Any]
    purposes: list[Purpose | None]
    profiles: list[Profile | None]  # the car's driver profile, when the vehicle sent one
    received: Count  # records in the request, duplicates included
    duplicates_in_batch: Count = 0  # records dropped because an earlier one of the batch had their msg_id

    def __len__(self) -> int:
        return len(self.msg_ids)

    def signal_batch(self) -> SignalBatch:
        """The pipeline stages' view of the same columns (no copy)."""
        return SignalBatch(
            vehicle=self.vehicle,
            received_ms=self.received_ms,
            msg_ids=self.msg_ids,
            ts_ms=self.ts_ms,
            signals=self.signals,
            values=self.values,
            purposes=self.purposes,
            profiles=self.profiles,
            duplicates_in_batch=self.duplicates_in_batch,
        )


class FrameMeta(msgspec.Struct, frozen=True):
    """What a vehicle says about one frame (validated by `onshore.vision.admit.parse_frame_meta`)."""

    msg_id: MsgId
    camera: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts_ms: Int64
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    purpose: Purpose | None = None


class FrameBatch(_Batch, frozen=True, kw_only=True, tag="frame"):
    """One admitted camera frame: its metadata, and the image as sent (checked, not yet decoded)."""

    meta: FrameMeta
    media_type: str  # image/jpeg or image/png, from the magic bytes
    width: Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
    height: Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
    image: bytes


class BatchRef(_Batch, frozen=True, kw_only=True, tag="ref"):
    """A batch carried by reference: its ``encode()`` bytes lie in the bus's payload store under ``batch_id``."""

    size: int  # bytes of the referenced encoding
    sha256: str  # hex SHA-256 of them: the worker checks what it fetched


Batch = RecordBatch | FrameBatch

_DECODER = msgspec.msgpack.Decoder(RecordBatch | FrameBatch | BatchRef)
_QUOTED = re.compile(r"'[^']*'")


class _Header(msgspec.Struct):
    """The fields that say what a batch is, read on the error path to tell a foreign version from garbage."""

    kind: Any = None
    version: Any = None


def decode(data: bytes) -> Batch:
    """Read a batch that `encode` wrote.

    Raises:
        BatchFormatError: ``data`` is not a batch (malformed MessagePack, a missing or mistyped field, a field
            outside admit's ranges or patterns, a value that is not JSON, columns of unequal length, a `BatchRef`),
            or it is a batch of a version other than ``BATCH_VERSION``. The message names the field or the version,
            never a value of the batch.
    """
    message = decode_message(data)
    if isinstance(message, BatchRef):
        raise BatchFormatError(
            "the bytes are a batch reference, not a batch: fetch the referenced batch from the bus's payload store"
        )
    return message


def decode_message(data: bytes) -> Batch | BatchRef:
    """Read what a bus message carries: a batch, or a `BatchRef` to one.

    Raises:
        BatchFormatError: as `decode` does.
    """
    try:
        batch = _DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise _refusal(data, exc) from None
    if batch.version != BATCH_VERSION:
        raise _version_error(batch.version)
    if isinstance(batch, RecordBatch):
        lengths = {len(column) for column in (batch.ts_ms, batch.signals, batch.values, batch.purposes, batch.profiles)}
        if lengths != {len(batch.msg_ids)}:
            raise BatchFormatError(
                "the batch is not an onshore batch: its record columns have unequal lengths "
                f"({sorted(lengths | {len(batch.msg_ids)})}); the sender is faulty, nothing was processed"
            )
        if batch.received < len(batch.msg_ids) + batch.duplicates_in_batch:
            raise BatchFormatError(
                "the batch is not an onshore batch: it received fewer records than it holds; the sender is faulty, "
                "nothing was processed"
            )
        for index, value in enumerate(batch.values):
            if type(value) not in _SCALARS and (problem := _json_problem(value)):
                raise BatchFormatError(
                    f"the batch is not an onshore batch: values[{index}] {problem}; the sender is faulty, "
                    "nothing was processed"
                )
    return batch


class _Sender(msgspec.Struct):
    """What a message that does not decode may still tell: its batch id and whose it is (never a value)."""

    batch_id: Any = None
    vehicle: Any = None


def claimed_sender(data: bytes) -> tuple[str | None, str | None]:
    """The ``(batch_id, vehicle pseudonym)`` bytes that `decode_message` refused claim to be, where they say so:
    a bus worker writes the refusal to that batch's receipt, for that vehicle. ``(None, None)`` for garbage."""
    try:
        sender = msgspec.msgpack.decode(data, type=_Sender)
    except msgspec.DecodeError:
        return None, None
    batch_id = sender.batch_id if isinstance(sender.batch_id, str) and len(sender.batch_id) <= 64 else None
    ref = sender.vehicle.get("ref") if isinstance(sender.vehicle, dict) else None
    return batch_id, ref if isinstance(ref, str) else None


_SCALARS = (str, bool, type(None))


def _json_problem(value: Any) -> str | None:
    """Why a decoded value is not one admit could have passed (JSON types, 64-bit integers, finite numbers)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not INT64_MIN <= node <= INT64_MAX:
                return "holds an integer beyond 64 bits"
        elif kind is float:
            if not math.isfinite(node):
                return "holds a number that is not finite"
        elif kind is list or kind is dict:
            if depth >= MAX_VALUE_DEPTH:
                return f"nests deeper than {MAX_VALUE_DEPTH} levels"
            if kind is dict:
                if not all(type(key) is str for key in node):
                    return "holds an object key that is not text"
                node = node.values()
            stack.extend((child, depth + 1) for child in node)
        else:
            return f"holds a value of type {kind.__name__}, which is no JSON value"
    return None


def _version_error(version: int) -> BatchFormatError:
    return BatchFormatError(
        f"the batch has version {version}; this onshore reads batch version {BATCH_VERSION}: run gateways and "
        "workers of the same release (upgrade the older ones). Nothing was processed"
    )


def _refusal(data: bytes, exc: msgspec.DecodeError) -> BatchFormatError:
    try:
        header = msgspec.msgpack.decode(data, type=_Header)
    except msgspec.DecodeError:
        header = None
    if header is not None and type(header.version) is int and header.version != BATCH_VERSION:
        return _version_error(header.version)
    # msgspec quotes a bad tag's value; the rest of its reasons name types and paths only
    reason = _QUOTED.sub("(a value)", str(exc))
    return BatchFormatError(
        f"{len(data)} bytes are not an onshore batch ({reason}); the sender is faulty, nothing was processed"
    )
