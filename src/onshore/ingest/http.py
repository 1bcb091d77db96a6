"""HTTP ingest: ``POST /v1/ingest`` takes a JSON array or NDJSON batch from an authenticated vehicle, or from a
gateway for one vehicle registered to it, named by the ``Onshore-Vin`` header (one vehicle per request)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from onshore.auth import Principal, Role
from onshore.errors import InputError
from onshore.web.auth import require
from onshore.web.limits import read_body

router = APIRouter(tags=["ingest"])
VIN_HEADER = "Onshore-Vin"
VehicleOrGateway = Annotated[Principal, Depends(require(Role.VEHICLE, Role.GATEWAY))]


INGEST_EXAMPLE = {
    "region": "cn",
    "received": 3,
    "accepted": 2,
    "duplicate": 0,
    "dropped_no_consent": 1,
    "rejected": 0,
    "by_category": {"general": 2},
    "zone_hits": 0,
    "unclassified_signals": [],
    "ledger_index": 41,
}


@router.post(
    "/v1/ingest",
    summary="Ingest a batch of signal records from one vehicle (its token, or a gateway's with Onshore-Vin)",
    responses={
        200: {
            "description": "per-batch counts",
            "content": {"application/json": {"example": INGEST_EXAMPLE}},
        },
        400: {"description": "malformed JSON or NDJSON; a gateway without the Onshore-Vin header"},
        401: {"description": "missing, unknown or revoked vehicle token"},
        403: {"description": "the Onshore-Vin vehicle is not registered to this gateway (vehicle_not_registered)"},
        408: {"description": "the body did not arrive within ingest.body_timeout_s"},
        413: {"description": "body or batch over the configured limits"},
        415: {"description": "content type other than JSON or NDJSON"},
        422: {"description": "invalid records; details list each; nothing was stored"},
        429: {"description": "this vehicle is over limits.vehicle_rate_per_s or limits.vehicle_max_in_flight"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["msg_id", "ts", "signal", "value"],
                            "properties": {
                                "msg_id": {"type": "string"},
                                "ts": {"type": ["integer", "string"], "description": "epoch ms or RFC 3339"},
                                "signal": {
                                    "type": "string",
                                    "description": "fleet-telemetry name or VSS path",
                                },
                                "value": {},
                                "purpose": {"type": "string"},
                            },
                        },
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def ingest(
    request: Request,
    principal: VehicleOrGateway,
    vin: Annotated[
        str | None,
        Header(
            alias=VIN_HEADER,
            max_length=32,
            description="gateway tokens: the VIN of the vehicle (registered to the gateway) the batch is from",
        ),
    ] = None,
) -> dict[str, Any]:
    state = request.app.state
    runtime = state.runtime
    limits = runtime.settings.ingest
    if principal.vehicle is None and not vin:
        raise InputError(f"a gateway names the vehicle of a batch: send the {VIN_HEADER} header")
    # The vehicle (and so its market and region) from the token, or from the gateway's registry entry.
    speaking_for = runtime.vehicles.speaking_for
    vehicle = (await run_in_threadpool(speaking_for, principal, [vin or ""], place=f"the {VIN_HEADER} header"))[0]
    with state.limits.upload_place(principal):
        body = await read_body(
            request, limits.max_body_bytes, "ingest.max_body_bytes", limits.body_timeout_s, "ingest.body_timeout_s"
        )
        result = await run_in_threadpool(runtime.ingest.ingest_body, vehicle, body, request.headers.get("content-type"))
    return result.to_dict()
