"""Admit: decode a batch body, check its shape and limits, drop in-batch duplicates.

The vehicle (and so the VIN and market) comes from the authenticated token, never from the payload:
fields such as ``vin`` or ``country`` inside a record are refused, not trusted.
Any invalid record rejects the whole batch with every reason listed, so nothing is half-written.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import orjson

from onshore.config import IngestSettings
from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.model import SignalBatch, Vehicle
from onshore.rules.schema import SIGNAL_NAME

_MSG_ID = re.compile(r"^[A-Za-z0-9._:\-]+$")
_ALLOWED_KEYS = frozenset({"msg_id", "ts", "signal", "value", "purpose"})
_MIN_TS_MS = 946684800000  # 2000-01-01: older timestamps are a clock fault, not data
_MAX_REASONS = 50

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq")


def decode_body(body: bytes, content_type: str | None, limits: IngestSettings) -> list[Any]:
    """Decode a JSON array or NDJSON body into a list of (unvalidated) records.

    Raises:
        PayloadTooLargeError: the body or the record count exceeds the limits.
        UnsupportedMediaTypeError: the content type is neither JSON nor NDJSON.
        InputError: the body is not valid JSON / NDJSON, or is empty.
    """
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLargeError(
            f"body is {len(body)} bytes; the limit is {limits.max_body_bytes} (ingest.max_body_bytes)"
        )
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        records = _decode_ndjson(body)
    elif media in JSON_TYPES:
        try:
            records = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"body is not valid JSON: {exc}") from None
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise InputError(f"body must be a JSON array of records, not a JSON {type(records).__name__}")
    else:
        raise UnsupportedMediaTypeError(
            f"content type {media!r} is not accepted; send application/json or application/x-ndjson"
        )
    if not records:
        raise InputError("batch is empty: send at least one record")
    if len(records) > limits.max_batch_records:
        raise PayloadTooLargeError(
            f"batch has {len(records)} records; the limit is {limits.max_batch_records} "
            "(ingest.max_batch_records): split it"
        )
    return records


def _decode_ndjson(body: bytes) -> list[Any]:
    records: list[Any] = []
    for line_no, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise InputError(f"line {line_no} is not valid JSON: {exc}") from None
    return records


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


def admit(records: list[Any], vehicle: Vehicle, limits: IngestSettings, *, now_ms: int | None = None) -> SignalBatch:
    """Validate decoded records and build the batch for ``vehicle``.

    Raises:
        ValidationError: any record is invalid; ``details`` lists ``{"index", "field", "reason"}``.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    max_ts = now_ms + limits.max_clock_skew_s * 1000
    max_id = limits.max_msg_id_chars
    reasons: list[dict[str, Any]] = []
    msg_ids: list[str] = []
    ts_list: list[int] = []
    signals: list[str] = []
    values: list[Any] = []
    purposes: list[str | None] = []
    seen: set[str] = set()
    duplicates = 0

    def bad(index: int, field: str, reason: str) -> None:
        if len(reasons) < _MAX_REASONS:
            reasons.append({"index": index, "field": field, "reason": reason})

    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            bad(i, "", f"a record must be a JSON object, not {type(rec).__name__}")
            continue
        extra = rec.keys() - _ALLOWED_KEYS
        if extra:
            bad(i, sorted(extra)[0], f"unknown field(s) {sorted(extra)}; the vehicle comes from the token")
            continue
        msg_id = rec.get("msg_id")
        if not isinstance(msg_id, str) or not msg_id:
            bad(i, "msg_id", "missing or not a string")
            continue
        if len(msg_id) > max_id or not _MSG_ID.match(msg_id):
            bad(i, "msg_id", f"must be 1-{max_id} characters of A-Z a-z 0-9 . _ : -")
            continue
        signal = rec.get("signal")
        if not isinstance(signal, str) or not signal:
            bad(i, "signal", "missing or not a string")
            continue
        if len(signal) > 200 or not SIGNAL_NAME.match(signal):
            bad(i, "signal", f"{signal[:80]!r} is neither a fleet-telemetry field name nor a VSS path")
            continue
        if "ts" not in rec:
            bad(i, "ts", "missing")
            continue
        ts = parse_ts(rec["ts"])
        if ts is None:
            bad(i, "ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
            continue
        if ts < _MIN_TS_MS or ts > max_ts:
            bad(i, "ts", f"{ts} is outside the accepted range (2000-01-01 .. now + ingest.max_clock_skew_s)")
            continue
        if "value" not in rec:
            bad(i, "value", "missing (send null for an invalid reading)")
            continue
        value = rec["value"]
        if isinstance(value, str | dict | list) and len(orjson.dumps(value)) > limits.max_value_bytes:
            bad(i, "value", f"larger than {limits.max_value_bytes} bytes (ingest.max_value_bytes)")
            continue
        purpose = rec.get("purpose")
        if purpose is not None and (not isinstance(purpose, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", purpose)):
            bad(i, "purpose", "must be a lower_snake_case purpose id")
            continue
        if msg_id in seen:
            duplicates += 1
            continue
        seen.add(msg_id)
        msg_ids.append(msg_id)
        ts_list.append(ts)
        signals.append(signal)
        values.append(value)
        purposes.append(purpose)
    if reasons:
        raise ValidationError(
            f"{len(reasons)}{'+' if len(reasons) >= _MAX_REASONS else ''} invalid record(s); "
            f"first: record {reasons[0]['index']} field {reasons[0]['field'] or '(record)'}: {reasons[0]['reason']}. "
            "Nothing from this batch was stored.",
            details=reasons,
        )
    return SignalBatch(
        vehicle=vehicle,
        received_ms=now_ms,
        msg_ids=msg_ids,
        ts_ms=ts_list,
        signals=signals,
        values=values,
        purposes=purposes,
        duplicates_in_batch=duplicates,
    )
