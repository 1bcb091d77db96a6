"""``POST /v1/ingest/fleet-telemetry``: fleet-telemetry records, as its HTTP dispatcher sends them.

The request is what upstream's HTTP dispatcher (``datastore/http``) posts: the record type in the ``type`` query
parameter (``V``, ``alerts``, ``errors``, ``connectivity``; its ``txtype`` header is read when the parameter is
absent; ``namespace`` is accepted and not used; its ``vin`` header must agree with the message's VIN), the
message as ``application/x-protobuf`` or, with ``transmit_decoded_records``, as ``application/json``.

A gateway (a fleet-telemetry server, a TSP) authenticates with its token, as a bearer token or as the password
of HTTP Basic credentials (the dispatcher's ``address`` can carry them:
``https://NAME:TOKEN@host/v1/ingest/fleet-telemetry``); a vehicle may send its own records with its own token.
Every VIN is checked against the registry before anything is stored (`VehicleRegistry.speaking_for`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from onshore.auth import Principal, Role
from onshore.errors import InputError
from onshore.ingest.fleet_telemetry.batches import by_vehicle
from onshore.ingest.fleet_telemetry.decode import PROTOBUF_TYPES, decode_request, media_type
from onshore.ingest.fleet_telemetry.records import VehicleMessage
from onshore.ingest.fleet_telemetry.schema import RecordType
from onshore.model import IngestResult
from onshore.web.auth import require
from onshore.web.limits import read_body

router = APIRouter(tags=["ingest"])
PATH = "/v1/ingest/fleet-telemetry"
FleetSender = Annotated[Principal, Depends(require(Role.VEHICLE, Role.GATEWAY, basic=True))]

EXAMPLE = {
    "record_type": "V",
    "messages": 1,
    "received": 3,
    "accepted": 3,
    "duplicate": 0,
    "dropped_no_consent": 0,
    "batches": [
        {
            "messages": [0],
            "region": "cn",
            "received": 3,
            "accepted": 3,
            "duplicate": 0,
            "dropped_no_consent": 0,
            "rejected": 0,
            "by_category": {"general": 3},
            "zone_hits": 0,
            "unclassified_signals": [],
            "ledger_index": 12,
        }
    ],
}


@router.post(
    PATH,
    summary="Ingest fleet-telemetry records (protobuf or its JSON form) from a gateway or a vehicle",
    responses={
        200: {
            "description": "counts per vehicle batch and in all",
            "content": {"application/json": {"example": EXAMPLE}},
        },
        400: {"description": "bytes that are no message of the record type, malformed JSON, a missing or bad VIN"},
        401: {"description": "missing, unknown or revoked token"},
        403: {"description": "a VIN not registered to this gateway (vehicle_not_registered); nothing was stored"},
        408: {"description": "the body did not arrive within ingest.body_timeout_s"},
        413: {"description": "over ingest.max_protobuf_bytes, ingest.max_body_bytes or ingest.max_batch_records"},
        415: {"description": "a content type other than protobuf, JSON or NDJSON"},
        422: {"description": "an unknown field or field number, a message without its time, a value of the wrong type"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"description": "a message in protobuf's JSON form, or an array"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def ingest_fleet_telemetry(
    request: Request,
    principal: FleetSender,
    record_type: Annotated[
        RecordType | None,
        Query(alias="type", description="the record type (upstream's txtype); default: the txtype header, else V"),
    ] = None,
    namespace: Annotated[
        str | None, Query(max_length=200, description="the dispatcher's namespace (accepted, not used)")
    ] = None,
) -> dict[str, Any]:
    state = request.app.state
    runtime = state.runtime
    limits = runtime.settings.ingest
    kind = _record_type(record_type, request.headers.get("txtype"))
    content_type = request.headers.get("content-type")
    media = media_type(content_type)
    limit, setting = (
        (limits.max_protobuf_bytes, "ingest.max_protobuf_bytes")
        if media in PROTOBUF_TYPES
        else (limits.max_body_bytes, "ingest.max_body_bytes")
    )
    del namespace  # upstream's dispatcher sends it; the token says who is sending
    # A vehicle holds one of its upload places, a gateway one of its own (limits.gateway_max_in_flight).
    with state.limits.upload_place(principal):
        body = await read_body(request, limit, setting, limits.body_timeout_s, "ingest.body_timeout_s")
        messages = await run_in_threadpool(decode_request, body, content_type, kind, limits)
        vins = _vins(messages, request.headers.get("vin"))
        vehicles = await run_in_threadpool(runtime.vehicles.speaking_for, principal, vins)
        batches = [b for b in by_vehicle(messages, vehicles) if b.records]
        results: list[IngestResult] = await run_in_threadpool(
            runtime.ingest.ingest_vehicles, [(b.vehicle, b.records) for b in batches]
        )
    answer: dict[str, Any] = {"record_type": kind.value, "messages": len(messages)}
    for total in ("received", "accepted", "duplicate", "dropped_no_consent"):
        answer[total] = sum(getattr(result, total) for result in results)
    answer["batches"] = [
        {"messages": batch.messages, **result.to_dict()} for batch, result in zip(batches, results, strict=True)
    ]
    return answer


def _vins(messages: list[VehicleMessage], header: str | None) -> list[str]:
    """The VIN of each message: its own, else the ``vin`` header upstream's dispatcher sends (its metadata).

    Raises:
        InputError (400): a message names another VIN than the header (the message never echoes either).
    """
    if header is None:
        return [m.vin for m in messages]
    named = header.strip().upper()
    for m in messages:
        if m.vin and m.vin.strip().upper() != named:
            raise InputError(f"message {m.index} names another VIN than the vin header: send one vehicle's VIN")
    return [m.vin or named for m in messages]


def _record_type(query: RecordType | None, header: str | None) -> RecordType:
    """The record type from the ``type`` parameter or the ``txtype`` header (they must agree), else ``V``.

    Raises:
        InputError (400): a ``txtype`` header that names no record type, or one that contradicts ``type``.
    """
    if header is None:
        return query or RecordType.V
    try:
        from_header = RecordType(header.strip())
    except ValueError:
        raise InputError(
            f"header txtype names no fleet-telemetry record type; use one of {', '.join(t.value for t in RecordType)}"
        ) from None
    if query is not None and query is not from_header:
        raise InputError(f"the type parameter says {query.value} and the txtype header {from_header.value}: send one")
    return from_header
