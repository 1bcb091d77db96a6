"""Admit a camera frame: its metadata and its bytes checked, then the `FrameBatch` the ingest bus carries.

Everything here runs before a frame is classified: the upload's metadata is validated (camera id, message id,
time, position, purpose) and the image is checked from its bytes and headers alone (format by magic bytes,
size, pixel limits, completeness; `onshore.vision.headers.check_frame`), so an invalid frame is refused with a
4xx and nothing is written. Classification, anonymisation and storage happen behind the bus.
"""

from __future__ import annotations

import re

from onshore.config import IngestSettings
from onshore.errors import ValidationError
from onshore.ingest.batch import FrameBatch, FrameMeta
from onshore.model import Vehicle
from onshore.pipeline.admit import MIN_TS_MS, MSG_ID_PATTERN, PURPOSE_PATTERN, parse_ts
from onshore.vision.headers import FrameLimits, check_frame

_CAMERA = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
POSITION_HEADER = "X-Onshore-Position"
_POSITION = re.compile(r"\s*([-+]?[0-9]{1,3}(?:\.[0-9]{1,15})?)\s*,\s*([-+]?[0-9]{1,3}(?:\.[0-9]{1,15})?)\s*")
_DIGITS = re.compile(r"[0-9]{1,19}")

__all__ = ["POSITION_HEADER", "FrameMeta", "admit_frame", "parse_frame_meta"]


def _bad(field_name: str, reason: str) -> ValidationError:
    return ValidationError(
        f"{field_name}: {reason}. Nothing was stored.", details=[{"field": field_name, "reason": reason}]
    )


def parse_frame_meta(
    params: dict[str, str], limits: IngestSettings, *, now_ms: int, position: str | None = None
) -> FrameMeta:
    """Validate a frame's metadata: the query parameters of ``POST /v1/frames`` and its position header.

    ``position`` is the ``X-Onshore-Position: <lat>,<lon>`` header (decimal degrees), never a query parameter:
    query strings end up in access logs and proxies' logs, and a position is personal data.

    Raises:
        ValidationError: a field is missing or malformed; the message and ``details`` name it.
    """
    for name in ("lat", "lon"):
        if name in params:
            raise _bad(name, f"send the position in the {POSITION_HEADER} header as <lat>,<lon>, not in the query")
    unknown = sorted(set(params) - {"msg_id", "camera", "ts", "purpose"})
    if unknown:
        raise _bad(unknown[0], "unknown field; the vehicle and its market come from the token, never the request")
    for name in ("msg_id", "camera", "ts"):
        if not params.get(name):
            raise _bad(name, "is required")
    msg_id = params["msg_id"]
    if len(msg_id) > limits.max_msg_id_chars or not re.fullmatch(MSG_ID_PATTERN, msg_id):
        raise _bad("msg_id", f"must be 1-{limits.max_msg_id_chars} characters of A-Z a-z 0-9 . _ : -")
    camera = params["camera"]
    if not re.fullmatch(_CAMERA, camera):
        raise _bad("camera", "must be 1-64 characters of a-z 0-9 _ . - (e.g. front, rear, cabin)")
    raw_ts = params["ts"]
    if len(raw_ts) > 40:
        raise _bad("ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
    # ASCII digits only: str.isdigit() also takes superscripts and other scripts' digits, which int() refuses
    ts_ms = parse_ts(int(raw_ts) if _DIGITS.fullmatch(raw_ts) else raw_ts)
    if ts_ms is None:
        raise _bad("ts", "must be epoch milliseconds or an RFC 3339 time with a zone")
    if ts_ms < MIN_TS_MS or ts_ms > now_ms + limits.max_clock_skew_s * 1000:
        raise _bad("ts", "is outside the accepted range (2000-01-01 .. now + ingest.max_clock_skew_s)")
    latitude, longitude = _position(position)
    purpose = params.get("purpose")
    if purpose is not None and not re.fullmatch(PURPOSE_PATTERN, purpose):
        raise _bad("purpose", "must be a lower_snake_case purpose id")
    return FrameMeta(msg_id, camera, ts_ms, latitude, longitude, purpose)


def _position(header: str | None) -> tuple[float | None, float | None]:
    """``(lat, lon)`` from the position header, or ``(None, None)`` without one; the value is never echoed."""
    if header is None:
        return None, None
    match = _POSITION.fullmatch(header)
    if match is None:
        raise _bad(POSITION_HEADER, "must be <lat>,<lon> in decimal degrees, e.g. 31.2304,121.4737")
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise _bad(POSITION_HEADER, "lat must lie in -90..90 and lon in -180..180")
    return latitude, longitude


def admit_frame(vehicle: Vehicle, data: bytes, meta: FrameMeta, limits: FrameLimits, *, now_ms: int) -> FrameBatch:
    """Check a frame's bytes (see `check_frame`) and build the admitted batch for ``vehicle``.

    Raises:
        ValidationError (422), PayloadTooLargeError (413), UnsupportedMediaTypeError (415): the image is empty,
            truncated, corrupt, too large or neither JPEG nor PNG; nothing was stored.
    """
    media_type, width, height = check_frame(data, limits)
    return FrameBatch(
        vehicle=vehicle,
        received_ms=now_ms,
        meta=meta,
        media_type=media_type,
        width=width,
        height=height,
        image=data,
    )
