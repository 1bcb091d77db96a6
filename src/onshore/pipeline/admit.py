"""Admit: decode a batch body, check its shape and limits, drop in-batch duplicates.

The vehicle (and so the VIN and market) comes from the authenticated token, never from the payload:
fields such as ``vin`` or ``country`` inside a record are refused, not trusted.
Any invalid record rejects the whole batch with a precise reason, so nothing is half-written.
Decoding and shape checks run in msgspec (C), because this is the hottest loop of onshore.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import msgspec
import orjson

from onshore import clock
from onshore.config import IngestSettings
from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.ingest.batch import (  # the patterns and ranges admit and the bus share
    INT64_MAX,
    INT64_MIN,
    MSG_ID_PATTERN,
    PURPOSE_PATTERN,
    SIGNAL_PATTERN,
    RecordBatch,
)
from onshore.model import Vehicle

MIN_TS_MS = 946684800000  # 2000-01-01: older timestamps are a clock fault, not data
_FIELD_AT = re.compile(r"\$\[(\d+)\](?:\.(\w+))?")
_LONG_DIGITS = re.compile(rb"[0-9]{19}")

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq")


class WireRecord(msgspec.Struct, forbid_unknown_fields=True):
    """One signal record as a vehicle sends it. No vin, market or country: those come from the token."""

    msg_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=MSG_ID_PATTERN)]
    ts: int | float | str
    signal: Annotated[str, msgspec.Meta(max_length=200, pattern=SIGNAL_PATTERN)]
    value: Any
    purpose: Annotated[str, msgspec.Meta(pattern=PURPOSE_PATTERN)] | None = None
    profile: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None  # the car's driver profile


_ARRAY_DECODER = msgspec.json.Decoder(list[WireRecord] | WireRecord)
_FIELD_HINTS = {
    "signal": "must be a fleet-telemetry field name or a VSS path (e.g. VehicleSpeed, Vehicle.Speed)",
    "msg_id": "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
    "purpose": "must be a lower_snake_case purpose id",
}


def _validation_error(
    exc: msgspec.ValidationError, line_of: list[int] | None = None, payload: bytes | list[Any] | None = None
) -> InputError:
    text = str(exc)
    match = _FIELD_AT.search(text)
    if match is None:
        return InputError(f"body must be a JSON array of signal records: {text}")
    index = int(match.group(1))
    field = match.group(2) or ""
    reason = text.split(" - at ")[0]
    if "unknown field" in reason:
        field = reason.split("`")[1] if "`" in reason else field
        reason += "; the vehicle, its VIN and its market come from the token, never from the payload"
    elif "missing required field" in reason:
        field = reason.split("`")[1] if "`" in reason else field
    elif field in _FIELD_HINTS:
        reason = _FIELD_HINTS[field] + _quote(payload, index, field)
    where = f"record {index}" + (f" (line {line_of[index]})" if line_of else "")
    return ValidationError(
        f"{where} field {field or '(record)'}: {reason}. Nothing from this batch was stored.",
        details=[{"index": index, "field": field, "reason": reason}],
    )


def _quote(payload: bytes | list[Any] | None, index: int, field: str) -> str:
    """The offending value, shortened (error path only; these fields never hold personal data)."""
    try:
        records = orjson.loads(payload) if isinstance(payload, bytes) else payload
        value = records[index][field] if isinstance(records, list) else records[field]  # type: ignore[index]
    except Exception:  # noqa: BLE001 - best effort on the error path
        return ""
    return f"; got {str(value)[:80]!r}"


def decode_body(body: bytes, content_type: str | None, limits: IngestSettings) -> list[WireRecord]:
    """Decode and shape-check a JSON array or NDJSON body.

    Raises:
        PayloadTooLargeError: the body or the record count exceeds the limits.
        UnsupportedMediaTypeError: the content type is neither JSON nor NDJSON.
        InputError: the body is not valid JSON / NDJSON, or is empty.
        ValidationError: a record lacks a field, has an unknown one, or a malformed one.
    """
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLargeError(
            f"body is {len(body)} bytes; the limit is {limits.max_body_bytes} (ingest.max_body_bytes)"
        )
    media = (content_type or "application/json").split(";")[0].strip().lower()
    line_of: list[int] | None = None
    if media in NDJSON_TYPES:
        lines = body.split(b"\n")
        line_of = [n for n, line in enumerate(lines, start=1) if line.strip()]
        payload = b"[" + b",".join(lines[n - 1] for n in line_of) + b"]"
    elif media in JSON_TYPES:
        payload = body
    else:
        raise UnsupportedMediaTypeError(
            f"content type {media!r} is not accepted; send application/json or application/x-ndjson"
        )
    try:
        decoded = _ARRAY_DECODER.decode(payload)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, line_of, payload) from None
    except msgspec.DecodeError:
        raise _syntax_error(body, line_of) from None
    except RecursionError:  # nested deeper than the decoder's stack: far past ingest.max_value_depth
        reason = f"nests deeper than {limits.max_value_depth} levels (ingest.max_value_depth)"
        raise ValidationError(
            f"a record's value {reason}. Nothing from this batch was stored.",
            details=[{"field": "value", "reason": reason}],
        ) from None
    records = [decoded] if isinstance(decoded, WireRecord) else decoded
    if not records:
        raise InputError("batch is empty: send at least one record")
    if len(records) > limits.max_batch_records:
        raise PayloadTooLargeError(
            f"batch has {len(records)} records; the limit is {limits.max_batch_records} "
            "(ingest.max_batch_records): split it"
        )
    return records


def _syntax_error(body: bytes, line_of: list[int] | None) -> InputError:
    """Find the first malformed line (NDJSON) or the JSON error position; only on the error path."""
    if line_of is not None:
        lines = body.split(b"\n")
        for n in line_of:
            try:
                orjson.loads(lines[n - 1])
            except orjson.JSONDecodeError as exc:
                return InputError(f"line {n} is not valid JSON: {exc}")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return InputError(f"body is not valid JSON: {exc}")
    return InputError(f"body must be a JSON array of records, not a JSON {type(parsed).__name__}")


def records_from_python(records: list[Any], limits: IngestSettings) -> list[WireRecord]:
    """Shape-check records that are already decoded (library and CLI callers)."""
    if not isinstance(records, list):
        raise InputError(f"records must be a list of signal records, not {type(records).__name__}")
    if len(records) > limits.max_batch_records:
        raise PayloadTooLargeError(
            f"batch has {len(records)} records; the limit is {limits.max_batch_records} (ingest.max_batch_records)"
        )
    if not records:
        raise InputError("batch is empty: send at least one record")
    try:
        return msgspec.convert(records, type=list[WireRecord])
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, None, records) from None


def parse_ts(value: Any) -> int | None:
    """Epoch milliseconds from an int/float of epoch ms or an RFC 3339 string; None when invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value == value else None  # NaN check
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def admit(
    records: list[WireRecord], vehicle: Vehicle, limits: IngestSettings, *, now_ms: int | None = None
) -> RecordBatch:
    """Check timestamps and value sizes, drop in-batch duplicates, and build the admitted batch for ``vehicle``.

    The batch is what the ingest bus carries to the process stages (`onshore.ingest.batch`).

    Raises:
        ValidationError: a record is invalid; ``details`` gives ``{"index", "field", "reason"}``.
    """
    now_ms = clock.now_ms() if now_ms is None else now_ms
    max_ts = now_ms + limits.max_clock_skew_s * 1000
    max_value = limits.max_value_bytes
    # Column-wise checks: comprehensions and min/max run far faster than one Python branch per record.
    ts_list: list[Any] = [r.ts for r in records]
    if not all(type(t) is int for t in ts_list):
        for i, t in enumerate(ts_list):
            if type(t) is not int:
                parsed = parse_ts(t)
                if parsed is None:
                    raise _bad(i, "ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
                ts_list[i] = parsed
    if min(ts_list) < MIN_TS_MS or max(ts_list) > max_ts:
        i = next(i for i, t in enumerate(ts_list) if t < MIN_TS_MS or t > max_ts)
        raise _bad(i, "ts", f"{ts_list[i]} is outside the accepted range (2000-01-01 .. now + ingest.max_clock_skew_s)")
    values = [r.value for r in records]
    dumps = orjson.dumps
    str_limit = max_value // 4  # a str of at most this many characters fits in max_value bytes of UTF-8
    max_depth = limits.max_value_depth
    for i, value in enumerate(values):
        kind = type(value)
        if kind is str:
            if len(value) > str_limit and len(value.encode()) > max_value:
                raise _bad(i, "value", f"larger than {max_value} bytes (ingest.max_value_bytes)")
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise _bad(i, "value", _INT_RANGE)
        elif kind is dict or kind is list:
            try:
                dumped = dumps(value)
            except orjson.JSONEncodeError:  # an integer beyond 64 bits, or nesting past orjson's own limit
                raise _bad(i, "value", _container_problem(value, max_depth) or _INT_RANGE) from None
            if len(dumped) > max_value:
                raise _bad(i, "value", f"larger than {max_value} bytes (ingest.max_value_bytes)")
            # nesting d levels deep takes at least 2d bytes, and orjson writes integers up to 2**64 - 1 (past
            # int64) with 19 digits or more: only such values need the walk
            long = len(dumped) > 2 * max_depth or _LONG_DIGITS.search(dumped) is not None
            if long and (problem := _container_problem(value, max_depth)):
                raise _bad(i, "value", problem)
    msg_ids = [r.msg_id for r in records]
    signals = [r.signal for r in records]
    purposes = [r.purpose for r in records]
    profiles = [r.profile for r in records]
    duplicates = len(msg_ids) - len(set(msg_ids))
    if duplicates:
        keep = _first_seen(msg_ids)
        msg_ids = [msg_ids[i] for i in keep]
        ts_list = [ts_list[i] for i in keep]
        signals = [signals[i] for i in keep]
        values = [values[i] for i in keep]
        purposes = [purposes[i] for i in keep]
        profiles = [profiles[i] for i in keep]
    return RecordBatch(
        vehicle=vehicle,
        received_ms=now_ms,
        msg_ids=msg_ids,
        ts_ms=ts_list,
        signals=signals,
        values=values,
        purposes=purposes,
        profiles=profiles,
        received=len(records),
        duplicates_in_batch=duplicates,
    )


_INT_RANGE = f"integers must lie in {INT64_MIN}..{INT64_MAX} (64 bits)"


def _container_problem(value: Any, max_depth: int) -> str | None:
    """Why a list or object value cannot be stored (too deep, or an integer beyond 64 bits), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return f"nests deeper than {max_depth} levels (ingest.max_value_depth)"
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is int and not INT64_MIN <= child <= INT64_MAX:
                return _INT_RANGE
    return None


def _first_seen(msg_ids: list[str]) -> list[int]:
    seen: set[str] = set()
    keep = []
    for i, m in enumerate(msg_ids):
        if m not in seen:
            seen.add(m)
            keep.append(i)
    return keep


def _bad(index: int, field: str, reason: str) -> ValidationError:
    return ValidationError(
        f"record {index} field {field}: {reason}. Nothing from this batch was stored.",
        details=[{"index": index, "field": field, "reason": reason}],
    )
