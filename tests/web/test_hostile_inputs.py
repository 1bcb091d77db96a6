"""Hostile input on every route: each case gets a precise 4xx in the one JSON error shape, never a 5xx, and
nothing is written (records, ledger events, bases, blobs and frame rows are counted before and after).

The cases are the kinds a security test found answering 500 (integers beyond 64 bits, dates at the ends of the
calendar, deep nesting, basis conditions that only failed at export, frame metadata passing a digit check,
corrupt images stored as grey) and their neighbours. VINs are the synthetic ones of conftest.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from onshore.sim.robustness.routes import snapshot
from onshore.web.app import create_app
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, now_ms
from tests.ingest import ft_payloads as ft

BIG = 2**70
NOW = now_ms() - 1000


def _jpeg(width: int = 320, height: int = 240, **params: int) -> bytes:
    rng = np.random.default_rng(7)
    image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (9, 9), 3)
    flags = [item for pair in params.items() for item in (getattr(cv2, pair[0]), pair[1])]
    return bytes(cv2.imencode(".jpg", image, flags)[1])


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    position, out = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        out.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return out


def _png_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def _truncated_png() -> bytes:
    """A PNG whose image data stops half-way, with valid chunk CRCs and an IEND appended."""
    rng = np.random.default_rng(3)
    chunks = _png_chunks(bytes(cv2.imencode(".png", rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))[1]))
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    return _png_of([chunks[0], (b"IDAT", idat[: len(idat) // 2]), (b"IEND", b"")])


def _claims_8000x5000() -> bytes:
    """A real 64 KB-ish JPEG whose frame header claims 8000x5000 (40 Mpx): decoded by OpenCV as grey fill."""
    data = bytearray(_jpeg(400, 300))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 5000, 8000)
    return bytes(data)


GOOD_JPEG = _jpeg()
GOOD_PJPEG = _jpeg(IMWRITE_JPEG_PROGRESSIVE=1)


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _record(value: str = "1", ts: str = str(NOW), msg_id: str = '"h1"', signal: str = '"VehicleSpeed"') -> str:
    return f'{{"msg_id":{msg_id},"ts":{ts},"signal":{signal},"value":{value}}}'


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    who: str  # vehicle | gateway | officer | analyst | auditor | subject | none
    status: int
    code: str | None = None
    json: Any = None
    content: bytes | str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


DEEP_OBJECT = '{"a":' * 600 + "1" + "}" * 600
NEWLINE_ID, NEWLINE_SIGNAL = "h1\n", "VehicleSpeed\n"
BIG_IN_OBJECT = '{"a":{"b":' + str(BIG) + "}}"
U64_IN_OBJECT = '{"a":' + str(2**64 - 1) + "}"  # orjson writes it: past int64, it used to pass admit


def _text(value: str) -> str:
    return orjson.dumps(value).decode()


def _ingest(id: str, body: str, status: int = 422, code: str = "validation_failed", ndjson: bool = False) -> Case:
    media = "application/x-ndjson" if ndjson else "application/json"
    return Case(id, "POST", "/v1/ingest", "vehicle", status, code, content=body, headers={"Content-Type": media})


INGEST = [
    _ingest("value beyond 64 bits", f"[{_record(str(BIG))}]"),
    _ingest("value below -2^63", f"[{_record(str(-(2**63) - 1))}]"),
    _ingest("value 2^64 nested in a list", f"[{_record(f'[1,{2**64}]')}]"),
    _ingest("value 2^63 nested in a list", f"[{_record(f'[1,{2**63}]')}]"),
    _ingest("value 2^64-1 in an object", f"[{_record(U64_IN_OBJECT)}]"),
    _ingest("value beyond 64 bits in an object", f"[{_record(BIG_IN_OBJECT)}]"),
    _ingest("value 1e400", f"[{_record('1e400')}]"),
    _ingest("value NaN literal", f"[{_record('NaN')}]", 400, "bad_request"),
    _ingest("value nested 33 deep", f"[{_record(_nested(33))}]"),
    _ingest("value nested 300 deep", f"[{_record(_nested(300))}]"),
    _ingest("value nested 100000 deep", f"[{_record(_nested(100_000))}]"),
    _ingest("value objects 600 deep", f"[{_record(DEEP_OBJECT)}]"),
    _ingest("ts beyond 64 bits", f"[{_record(ts=str(BIG))}]"),
    _ingest("ts negative", f"[{_record(ts='-1')}]"),
    _ingest("ts 1e300", f"[{_record(ts='1e300')}]"),
    _ingest("ts true", f"[{_record(ts='true')}]"),
    _ingest("ts 9999-12-31 -14:00", f"[{_record(ts=_text('9999-12-31T23:59:59-14:00'))}]"),
    _ingest("ts 0001-01-01 +14:00", f"[{_record(ts=_text('0001-01-01T00:00:00+14:00'))}]"),
    _ingest("ts without zone", f"[{_record(ts=_text('2024-05-01T00:00:00'))}]"),
    _ingest("msg_id with a trailing newline", f"[{_record(msg_id=_text(NEWLINE_ID))}]"),
    _ingest("signal with a trailing newline", f"[{_record(signal=_text(NEWLINE_SIGNAL))}]"),
    _ingest("a vin in the record", "[" + _record()[:-1] + f',"vin":"{CN_VIN}"' + "}]"),
    _ingest("ndjson value beyond 64 bits", _record(str(BIG)) + "\n", ndjson=True),
    _ingest("ndjson nested 100000 deep", _record(_nested(100_000)) + "\n", ndjson=True),
    _ingest("ndjson broken line", _record() + "\n{\n", 400, "bad_request", ndjson=True),
    _ingest("empty body", "", 400, "bad_request"),
    _ingest("truncated json", "[", 400, "bad_request"),
    _ingest("json null", "null", 400, "bad_request"),
    _ingest("empty array", "[]", 400, "bad_request"),
    _ingest(
        "too many records",
        "[" + ",".join(_record(msg_id=f'"m{i}"') for i in range(5001)) + "]",
        413,
        "payload_too_large",
    ),
    Case("ingest as text/plain", "POST", "/v1/ingest", "vehicle", 415, content="[]", headers={"Content-Type": "x/y"}),
    Case(
        "ingest declared length beyond 64 bits",
        "POST",
        "/v1/ingest",
        "vehicle",
        413,
        "payload_too_large",
        content=f"[{_record()}]",
        headers={"Content-Type": "application/json", "Content-Length": str(BIG)},
    ),
]

RECORDS = [
    Case(f"records {name}={value}", "GET", "/v1/records", "analyst", 422, "validation_failed", params={name: value})
    for name, value in [
        ("after_id", 2**63),
        ("after_id", BIG),
        ("after_id", -1),
        ("after_id", "1e3"),
        ("since_ms", 2**64),
        ("until_ms", 2**63),
        ("since_ms", -(2**63) - 1),
        ("limit", 0),
        ("limit", 1001),
        ("limit", BIG),
        ("signal", "S" * 201),
        ("purpose", "Bad Purpose"),
        ("category", "secret"),
    ]
]
for _case in RECORDS:
    _case.params.setdefault("region", "cn")
RECORDS.append(Case("records of an unknown region", "GET", "/v1/records", "analyst", 404, params={"region": "mars"}))
RECORDS.append(Case("records without a token", "GET", "/v1/records", "none", 401, params={"region": "cn"}))

LEDGER = [
    Case(f"ledger {path} {params}", "GET", f"/v1/ledger/cn/{path}", "auditor", 422, "validation_failed", params=params)
    for path, params in [
        ("proof/inclusion", {"index": 2**63, "size": 1}),
        ("proof/inclusion", {"index": 0, "size": 2**64}),
        ("proof/inclusion", {"index": -1, "size": 1}),
        ("proof/consistency", {"from": 0, "to": 1}),
        ("proof/consistency", {"from": 1, "to": BIG}),
        ("events", {"start": BIG}),
        ("events", {"start": 0, "end": 2**63}),
    ]
] + [Case("ledger of an unknown region", "GET", "/v1/ledger/mars/checkpoint", "auditor", 404)]


def _frame(id: str, status: int, code: str | None = None, *, body: bytes = GOOD_JPEG, **kw: Any) -> Case:
    params = {"msg_id": "hf-1", "camera": "front", "ts": str(NOW), **kw.pop("params", {})}
    params = {k: v for k, v in params.items() if v is not None}
    headers = {"Content-Type": "image/jpeg", **kw.pop("headers", {})}
    return Case(id, "POST", "/v1/frames", "vehicle", status, code, content=body, params=params, headers=headers)


def _sof_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.find(b"\xff\xc0")
    out[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(out)


V = "validation_failed"
FRAMES = [
    _frame("frame ts in superscript digits", 422, V, params={"ts": "²³"}),
    _frame("frame ts in Arabic-Indic digits", 422, V, params={"ts": "١٢٣"}),
    _frame("frame ts beyond 64 bits", 422, V, params={"ts": str(BIG)}),
    _frame("frame ts 9999-12-31 -14:00", 422, V, params={"ts": "9999-12-31T23:59:59-14:00"}),
    _frame("frame ts 0001-01-01 +14:00", 422, V, params={"ts": "0001-01-01T00:00:00+14:00"}),
    _frame("frame ts very long", 422, V, params={"ts": "9" * 5000}),
    _frame("frame position in the query", 422, V, params={"lat": "31.2", "lon": "121.4"}),
    _frame("frame position not a pair", 422, V, headers={"X-Onshore-Position": "31.2"}),
    _frame("frame position out of range", 422, V, headers={"X-Onshore-Position": "91,121.4"}),
    _frame("frame position in exponent form", 422, V, headers={"X-Onshore-Position": "3e1,121.4"}),
    _frame("frame position inf", 422, V, headers={"X-Onshore-Position": "inf,1"}),
    _frame("frame msg_id with newline", 422, V, params={"msg_id": "hf\n"}),
    _frame("frame camera upper-case", 422, V, params={"camera": "Front"}),
    _frame("frame purpose malformed", 422, V, params={"purpose": "Bad-Purpose"}),
    _frame("frame unknown parameter", 422, V, params={"vin": CN_VIN}),
    _frame("frame empty", 422, V, body=b""),
    _frame("frame truncated jpeg", 422, V, body=GOOD_JPEG[: len(GOOD_JPEG) // 2]),
    _frame("frame truncated jpeg with end marker", 422, V, body=GOOD_JPEG[: len(GOOD_JPEG) // 2] + b"\xff\xd9"),
    _frame("frame 99% jpeg with end marker", 422, V, body=GOOD_JPEG[: len(GOOD_JPEG) * 99 // 100] + b"\xff\xd9"),
    _frame("frame truncated progressive jpeg", 422, V, body=GOOD_PJPEG[: len(GOOD_PJPEG) // 2] + b"\xff\xd9"),
    _frame("frame header claims 8000x5000", 422, V, body=_claims_8000x5000()),
    _frame("frame header claims 0x240", 422, V, body=_sof_size(GOOD_JPEG, 0, 240)),
    _frame("frame header claims 640x480 of 320x240 data", 422, V, body=_sof_size(GOOD_JPEG, 640, 480)),
    _frame("frame header claims 65535x65535", 413, "payload_too_large", body=_sof_size(GOOD_JPEG, 65535, 65535)),
    _frame("frame jpeg magic then noise", 422, V, body=b"\xff\xd8\xff" + bytes(range(256)) * 8),
    _frame("frame truncated png with IEND", 422, V, body=_truncated_png(), headers={"Content-Type": "image/png"}),
    _frame("frame png header only", 422, V, body=_truncated_png()[:40], headers={"Content-Type": "image/png"}),
    _frame("frame gif", 415, "unsupported_media_type", body=b"GIF89a" + b"\x00" * 64),
    _frame("frame as text/plain", 415, "unsupported_media_type", headers={"Content-Type": "text/plain"}),
    _frame("frame declared too large", 413, "payload_too_large", headers={"Content-Length": str(BIG)}),
]

_SCOPE = {"categories": ["general"], "purposes": ["diagnostics"], "recipient": "acme-gmbh", "destinations": ["DE"]}


def _basis(id: str, status: int = 422, code: str | None = V, **spec: Any) -> Case:
    body = {"id": "hb-1", "region": "cn", "route": "standard_contract", "scope": _SCOPE, **spec}
    return Case(id, "POST", "/v1/border/bases", "officer", status, code, json=body)


def _condition(name: str, **params: Any) -> list[dict[str, Any]]:
    return [{"name": name, "params": params}]


BASES = [
    _basis("basis expires 9999-12-31", expires_on="9999-12-31"),
    _basis("basis expires 0001-01-01", expires_on="0001-01-01"),
    _basis("basis coarsen_time bucket_s text", conditions=_condition("coarsen_time", bucket_s="x")),
    _basis("basis coarsen_time bucket_s 0", conditions=_condition("coarsen_time", bucket_s=0)),
    _basis("basis coarsen_time bucket_s 0.5", conditions=_condition("coarsen_time", bucket_s=0.5)),
    _basis("basis coarsen_time bucket_s beyond 64 bits", conditions=_condition("coarsen_time", bucket_s=BIG)),
    _basis("basis coarsen_position cell_deg 0", conditions=_condition("coarsen_position", cell_deg=0)),
    _basis("basis coarsen_position cell_deg 11", conditions=_condition("coarsen_position", cell_deg=11)),
    _basis("basis coarsen_position cell_deg true", conditions=_condition("coarsen_position", cell_deg=True)),
    _basis("basis coarsen_position grid hex", conditions=_condition("coarsen_position", grid="hex")),
    _basis("basis coarsen_position resolution 16", conditions=_condition("coarsen_position", resolution=16)),
    _basis("basis aggregate epsilon -1", conditions=_condition("aggregate", epsilon=-1)),
    _basis("basis aggregate epsilon huge", conditions=_condition("aggregate", epsilon=1e308)),
    _basis("basis aggregate min_count 0", conditions=_condition("aggregate", min_count=0)),
    _basis("basis aggregate unknown parameter", conditions=_condition("aggregate", sigma=1)),
    _basis("basis drop_direct_identifiers bad tags", conditions=_condition("drop_direct_identifiers", tags="A B")),
    _basis("basis pseudonymise with a parameter", conditions=_condition("pseudonymise", salt="x")),
    _basis("basis unknown transform", 400, "bad_request", conditions=[{"name": "blur_everything"}]),
    _basis("basis reference holding a vin-shaped token", reference=f"filing {CN_VIN_2}"),
    _basis("basis reference holding a registered vin glued", reference=f"REF{CN_VIN}X"),
    _basis("basis reference holding a lower-case vin", reference=f"filing {CN_VIN.lower()}"),
    _basis("basis note holding a token", note="contact via ons_abcdefghijklmnop"),
    _basis("basis attestation holding a vin", attestations=[f"subjects_informed {CN_VIN}"]),
    _basis("basis reference too long", reference="r" * 121),
    Case(
        "basis nested 100000 deep",
        "POST",
        "/v1/border/bases",
        "officer",
        400,
        content=_nested(100_000),
        headers={"Content-Type": "application/json"},
    ),  # fmt: skip
    Case(
        "basis body over server.max_body_bytes",
        "POST",
        "/v1/border/bases",
        "officer",
        413,
        "payload_too_large",
        content=b"[" + b"1," * 600_000 + b"1]",
        headers={"Content-Type": "application/json"},
    ),  # fmt: skip
    Case("bases as of 9999-12-31", "GET", "/v1/border/bases", "officer", 422, V, params={"date": "9999-12-31"}),
    Case("bases as of 0001-01-01", "GET", "/v1/border/bases", "auditor", 422, V, params={"date": "0001-01-01"}),
    Case("basis as of 9999-12-31", "GET", "/v1/border/bases/hb-0", "officer", 422, V, params={"date": "9999-12-31"}),
    Case(
        "approve on 9999-12-31",
        "POST",
        "/v1/border/bases/hb-0/approve",
        "officer",
        422,
        V,
        json={"approved_on": "9999-12-31"},
    ),  # fmt: skip
    Case(
        "approve with a vin in the reference",
        "POST",
        "/v1/border/bases/hb-0/approve",
        "officer",
        422,
        V,
        json={"approved_on": "2024-07-01", "reference": f"CAC {CN_VIN}"},
    ),  # fmt: skip
    Case("approve an unknown basis", "POST", "/v1/border/bases/nope/approve", "officer", 404, json={}),
]


def _export(id: str, path: str = "/v1/border/exports/decide", status: int = 422, **over: Any) -> Case:
    body = {"region": "cn", "destination": "DE", "recipient": "acme-gmbh", "purpose": "diagnostics",
            "since": "2024-05-01T00:00:00+08:00", "until": "2024-06-01T00:00:00+08:00", "fleet": "all"}  # fmt: skip
    params = over.pop("params", {})
    return Case(id, "POST", path, "officer", status, V if status == 422 else None, json={**body, **over}, params=params)


EXPORTS = [
    _export("export since 0001-01-01 +14:00", since="0001-01-01T00:00:00+14:00"),
    _export("export until 9999-12-31 -14:00", until="9999-12-31T23:59:59-14:00"),
    _export("export release since 0001-01-01", "/v1/border/exports", since="0001-01-01T00:00:00+14:00"),
    _export("export decide at 9999-12-31 -14:00", params={"at": "9999-12-31T23:59:59-14:00"}),
    _export("export decide at 0001-01-01 +14:00", params={"at": "0001-01-01T00:00:00+14:00"}),
    _export("export naming a vin", vehicles=[CN_VIN], fleet=None),
    _export("export signal with newline", signals=["VehicleSpeed\n"]),
    _export("export until before since", until="2024-04-01T00:00:00+08:00"),
    _export("export unknown field", requester_name="x"),
    Case("export manifest of a malformed id", "GET", "/v1/border/exports/../manifest", "officer", 404),
]

CONSENTS = [
    Case("consent bad purpose", "POST", "/v1/consents", "vehicle", 422, V, json={"purpose": "Bad"}),
    Case(
        "consent validity too long",
        "POST",
        "/v1/consents",
        "vehicle",
        422,
        V,
        json={"purpose": "diagnostics", "validity": "9" * 17},
    ),  # fmt: skip
    Case("consent profile too long", "GET", "/v1/consents", "vehicle", 422, V, params={"profile": "p" * 65}),
    Case(
        "withdraw with a profile too long",
        "DELETE",
        "/v1/consents/diagnostics",
        "vehicle",
        422,
        V,
        params={"profile": "p" * 65},
    ),  # fmt: skip
    Case("withdraw a purpose never granted", "DELETE", "/v1/consents/Bad%0A", "vehicle", 404),
    Case("consent from an officer", "POST", "/v1/consents", "officer", 403, json={"purpose": "diagnostics"}),
    Case(
        "subject consent bad level",
        "POST",
        "/v1/subjects/me/consents",
        "subject",
        422,
        V,
        json={"purpose": "diagnostics", "level": "eternal"},
    ),  # fmt: skip
    Case(
        "subject consent extra field",
        "POST",
        "/v1/subjects/me/consents",
        "subject",
        422,
        V,
        json={"purpose": "diagnostics", "vin": CN_VIN},
    ),  # fmt: skip
    Case("subject access to another subject", "POST", "/v1/subjects/s-other/access", "subject", 403),
    Case("subject erasure of another subject", "POST", "/v1/subjects/s-other/erasure", "subject", 403),
    Case("subject consent with a forged token", "GET", "/v1/subjects/me/consents", "forged", 401),
]

FT_PATH = "/v1/ingest/fleet-telemetry"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON_TYPE = {"Content-Type": "application/json"}
_SPEED = ft.datum("VehicleSpeed", "double_value", 42.5)


def _ft(id: str, content: bytes | str, status: int, code: str, who: str = "gateway", **extra: Any) -> Case:
    headers = extra.pop("headers", PROTOBUF)
    return Case(id, "POST", FT_PATH, who, status, code, content=content, headers=headers, **extra)


def _ft_json(id: str, message: Any, status: int = 422, code: str = "validation_failed") -> Case:
    return _ft(
        id, message if isinstance(message, str) else orjson.dumps(message).decode(), status, code, headers=JSON_TYPE
    )


def _pb(data: list[ft.Datum], vin: str = CN_VIN, **kw: Any) -> bytes:
    return ft.payload(data, vin=vin, created_ms=NOW, **kw).SerializeToString()


def _gateway_ingest(id: str, status: int, code: str, vin: str | None) -> Case:
    headers = {"Content-Type": "application/json", **({"Onshore-Vin": vin} if vin is not None else {})}
    return Case(id, "POST", "/v1/ingest", "gateway", status, code, content=f"[{_record()}]", headers=headers)


_GOOD = ft.as_json(ft.payload([_SPEED], vin=CN_VIN, created_ms=NOW))
_VALUE_60 = b"\xe2\x03\x01A"  # a Value with field number 60: a value case this schema lacks
_DATUM_60 = b"\x08\x04\x12" + bytes([len(_VALUE_60)]) + _VALUE_60


def _with_datum(value: dict[str, Any], key: str = "VehicleSpeed") -> dict[str, Any]:
    return {**_GOOD, "data": [{"key": key, "value": value}]}


FLEET_TELEMETRY = [
    _ft("ft garbage bytes", b"\xff\xff\xff\xff", 400, "bad_request"),
    _ft("ft empty protobuf body", b"", 400, "bad_request"),
    _ft("ft unknown payload field number", ft.with_unknown_field(_pb([_SPEED]), 9), 422, "validation_failed"),
    _ft("ft unknown value case", _pb([_SPEED]) + b"\x0a\x08" + _DATUM_60, 422, "validation_failed"),
    _ft("ft unknown field enum number", _pb([ft.datum(300, "double_value", 1.0)]), 422, "validation_failed"),
    _ft("ft NaN double", _pb([ft.datum("VehicleSpeed", "double_value", float("nan"))]), 422, "validation_failed"),
    _ft("ft a datum with an empty value", _pb([]) + b"\x0a\x04\x08\x04\x12\x00", 422, "validation_failed"),
    _ft("ft no created_at", b"\x1a\x11" + CN_VIN.encode(), 422, "validation_failed"),
    _ft("ft vin not registered to the gateway", _pb([_SPEED], vin=CN_VIN_2), 403, "vehicle_not_registered"),
    _ft("ft gateway payload without a vin", _pb([_SPEED], vin=""), 400, "bad_request"),
    _ft("ft malformed vin", _pb([_SPEED], vin="LSVM0TEST0000000I"), 400, "bad_request"),
    _ft("ft a vehicle sending another vin", _pb([_SPEED], vin=CN_VIN_2), 403, "vehicle_not_registered", "vehicle"),
    _ft("ft protobuf over 1,000,000 bytes", b"\x00" * 1_000_001, 413, "payload_too_large"),
    _ft("ft text/plain", b"x", 415, "unsupported_media_type", headers={"Content-Type": "text/plain"}),
    _ft("ft record type unknown", _pb([_SPEED]), 422, "validation_failed", params={"type": "bogus"}),
    _ft(
        "ft txtype contradicts type",
        _pb([_SPEED]),
        400,
        "bad_request",
        params={"type": "V"},
        headers={**PROTOBUF, "txtype": "alerts"},
    ),
    _ft(
        "ft vin header contradicts the payload",
        _pb([_SPEED]),
        400,
        "bad_request",
        headers={**PROTOBUF, "vin": CN_VIN_2},
    ),
    _ft("ft V bytes sent as alerts", _pb([_SPEED]), 422, "validation_failed", params={"type": "alerts"}),
    _ft_json("ft json malformed", "{", 400, "bad_request"),
    _ft_json("ft json unknown field", {**_GOOD, "extraField": 1}),
    _ft_json("ft json unknown enum name", _with_datum({"doubleValue": 1}, key="NoSuchField")),
    _ft_json("ft json number as a vin", {**_GOOD, "vin": 12345678901234567}),
    _ft_json("ft json not an object", [1]),
    _ft_json(
        "ft json second vehicle not registered", [_GOOD, {**_GOOD, "vin": CN_VIN_2}], 403, "vehicle_not_registered"
    ),
    _ft_json("ft json number of the wrong type", _with_datum({"doubleValue": "fast"})),
    _ft_json("ft json value of the wrong shape for its signal", _with_datum({"stringValue": "fast"})),
    _ft(
        "ft ndjson broken line",
        orjson.dumps(_GOOD).decode() + "\n{\n",
        400,
        "bad_request",
        headers={"Content-Type": "application/x-ndjson"},
    ),
    _gateway_ingest("ingest by a gateway without Onshore-Vin", 400, "bad_request", None),
    _gateway_ingest("ingest by a gateway for a vin not registered to it", 403, "vehicle_not_registered", CN_VIN_2),
    _gateway_ingest("ingest by a gateway with a malformed vin", 400, "bad_request", "nope"),
]

_INCIDENT = {"title": "x", "occurred_on": "2024-05-01", "categories": ["personal"], "people_affected": 1}
REGISTERS = [
    Case("transfer list unknown status", "GET", "/v1/border/exports", "officer", 422, V, params={"status": "lost"}),
    Case("transfer list since 9999-12-31", "GET", "/v1/border/exports", "auditor", 422, V,
         params={"since": "9999-12-31"}),
    Case("transfer list lower-case country", "GET", "/v1/border/exports", "officer", 422, V,
         params={"destination": "de"}),
    Case("transfer list by an analyst", "GET", "/v1/border/exports", "analyst", 403),
    Case("register list year 1800", "GET", "/v1/registers/incident", "officer", 422, V, params={"year": "1800"}),
    Case("register list unknown register", "GET", "/v1/registers/diary", "officer", 404),
    Case("incident with negative people", "POST", "/v1/registers/incident", "officer", 422, V,
         json={**_INCIDENT, "people_affected": -1}),
    Case("incident with a vin in the title", "POST", "/v1/registers/incident", "officer", 422, V,
         json={**_INCIDENT, "title": f"car {CN_VIN}"}),
    Case("incident in an unknown region", "POST", "/v1/registers/incident", "officer", 404, params={"region": "mars"},
         json=_INCIDENT),
    Case("incident with an unknown field", "POST", "/v1/registers/incident", "officer", 422, V,
         json={**_INCIDENT, "vin": "x"}),
    Case("incident by an auditor", "POST", "/v1/registers/incident", "auditor", 403, json=_INCIDENT),
    Case("change an unknown entry", "PATCH", "/v1/registers/incident/999999", "officer", 404, json={"title": "y"}),
    Case("report of an unknown kind", "POST", "/v1/reports", "officer", 422, V, json={"kind": "weekly", "year": 2026}),
    Case("report for the year 1800", "POST", "/v1/reports", "officer", 422, V, json={"kind": "annual", "year": 1800}),
    Case("report by an analyst", "POST", "/v1/reports", "analyst", 403, json={"kind": "annual", "year": 2026}),
]  # fmt: skip

RECEIPTS = [
    Case("receipt id not hex", "GET", "/v1/receipts/not-a-receipt", "vehicle", 422, V),
    Case("receipt id too long", "GET", "/v1/receipts/" + "a" * 33, "vehicle", 422, V),
    Case("receipt in embedded mode", "GET", "/v1/receipts/" + "a" * 32, "vehicle", 404),
    Case("receipt by a gateway without Onshore-Vin", "GET", "/v1/receipts/" + "a" * 32, "gateway", 404),
    Case("receipt by an analyst", "GET", "/v1/receipts/" + "a" * 32, "analyst", 403),
]

# The dashboard's pages and forms (an API client gets the JSON error; a browser the same refusal as a page).
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DESK = [
    Case("desk transfers since yesterday", "GET", "/desk/border", "officer", 400, params={"since": "yesterday"}),
    Case("desk transfers to usa", "GET", "/desk/border", "officer", 400, params={"destination": "usa"}),
    Case("desk transfers status lost", "GET", "/desk/border", "officer", 400, params={"status": "lost"}),
    Case("desk transfers of mars", "GET", "/desk/border", "officer", 404, params={"region": "mars"}),
    Case("desk events from -1", "GET", "/desk/audit", "auditor", 422, V, params={"start": "-1"}),
    Case("desk events of a bad kind", "GET", "/desk/audit", "auditor", 400, params={"kind": "DROP TABLE"}),
    Case("desk events of mars", "GET", "/desk/audit", "auditor", 404, params={"region": "mars"}),
    Case("desk proof index -1", "GET", "/desk/audit/proof", "auditor", 422, V, params={"index": "-1"}),
    Case("desk proof beyond the log", "GET", "/desk/audit/proof", "auditor", 400, params={"index": "5", "size": "1"}),
    Case("desk verify no manifest", "POST", "/desk/audit/verify/bundle", "auditor", 400, content=b""),
    Case("desk verify not json", "POST", "/desk/audit/verify/bundle", "auditor", 400, content=b"{no"),
    Case("desk verify a list", "POST", "/desk/audit/verify/bundle", "auditor", 400, content=b"[]"),
    Case(
        "desk verify for mars",
        "POST",
        "/desk/audit/verify/bundle",
        "auditor",
        404,
        content=b"{}",
        params={"region": "mars"},
    ),  # fmt: skip
    Case("desk verify a non-report", "POST", "/desk/audit/verify/report", "auditor", 400, content=b"hello"),
    Case(
        "desk approve an unknown basis",
        "POST",
        "/desk/bases/nope/approve",
        "officer",
        404,
        content=b"csrf=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),  # fmt: skip
    Case(
        "desk report of a bad kind",
        "POST",
        "/desk/reports",
        "officer",
        400,
        content=b"kind=novel&year=2026",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),  # fmt: skip
    Case(
        "desk form not utf-8",
        "POST",
        "/desk/reports",
        "officer",
        400,
        content=b"kind=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),  # fmt: skip
]

CASES = RECEIPTS + INGEST + RECORDS + LEDGER + FRAMES + BASES + EXPORTS + CONSENTS + FLEET_TELEMETRY + REGISTERS + DESK


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, TestClient, dict[str, str]]]:
    """One workspace for all cases (each asserts that it wrote nothing), with a vehicle, a subject and a basis."""
    from onshore.config import load_settings
    from onshore.runtime import Runtime
    from onshore.workspace import init_workspace

    folder = tmp_path_factory.mktemp("hostile")
    config, issued = init_workspace(folder)
    settings = load_settings(config, env={}, overrides={"limits": {"vehicle_rate_per_s": 1000, "vehicle_burst": 1000}})
    runtime = Runtime(settings, create=True)
    ws = Workspace(folder, config, settings, runtime, {t.name: t for t in issued})
    vehicle = runtime.vehicles.add(CN_VIN, "CN", gateway="gateway").token
    _subject, subject_token = runtime.subjects.bind(CN_VIN, "CN", "driver", profile="1")
    body = {"id": "hb-0", "region": "cn", "route": "standard_contract", "scope": _SCOPE}
    tokens = {
        "vehicle": vehicle,
        "officer": ws.token("officer"),
        "gateway": ws.token("gateway"),
        "analyst": ws.token("analyst-cn"),
        "auditor": ws.token("auditor"),
        "subject": subject_token or "",
        "forged": "ons_sub_forged-token-0000",
    }
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            assert client.post("/v1/border/bases", json=body, headers=auth(tokens["officer"])).status_code == 201
            yield ws, client, tokens
    finally:
        runtime.close()


def written(ws: Workspace) -> dict[str, Any]:
    """Everything a request could write: records, ledger sizes, bases, blobs and frame drops per region."""
    return snapshot(ws.runtime)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_a_precise_4xx_and_writes_nothing(served, case: Case) -> None:
    ws, client, tokens = served
    headers = dict(case.headers)
    if case.who != "none":
        headers.update(auth(tokens[case.who]))
    before = written(ws)
    response = client.request(
        case.method, case.path, params=case.params, json=case.json, content=case.content, headers=headers
    )
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["code"], str)
    if case.code is not None:
        assert body["error"]["code"] == case.code, body
    assert CN_VIN not in response.text and CN_VIN.lower() not in response.text  # a refusal never echoes a VIN
    assert written(ws) == before


def test_the_table_covers_every_route_that_takes_input(served) -> None:
    """Every route with a body or query parameters has hostile cases: a new one fails here until it has."""
    _ws, client, _tokens = served
    covered = {(c.method, _template(c.path)) for c in CASES}
    taking_input = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation or any(p["in"] != "path" for p in operation.get("parameters", []))
    }
    assert len(taking_input) >= 16
    assert taking_input <= covered, sorted(taking_input - covered)


def _template(path: str) -> str:
    parts = path.split("/")
    if path.startswith("/v1/border/bases/") and len(parts) >= 5:
        parts[4] = "{basis_id}"
    if path.startswith("/v1/subjects/") and parts[3] != "me":
        parts[3] = "{subject_ref}"
    if path.startswith("/v1/consents/"):
        parts[3] = "{purpose}"
    if path.startswith("/v1/ledger/"):
        parts[3] = "{region}"
    if path.startswith("/v1/receipts/"):
        parts[3] = "{receipt_id}"
    if path.startswith("/v1/registers/"):
        parts[3] = "{register}"
        if len(parts) >= 5:
            parts[4] = "{entry_id}"
    return "/".join(parts)
