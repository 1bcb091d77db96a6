"""HTTP ingest: ``POST /v1/ingest`` takes a JSON array or NDJSON batch from an authenticated vehicle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from onshore.web.auth import VehicleCaller
from onshore.web.limits import read_body

router = APIRouter(tags=["ingest"])


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
    summary="Ingest a batch of signal records from one vehicle",
    responses={
        200: {
            "description": "per-batch counts",
            "content": {"application/json": {"example": INGEST_EXAMPLE}},
        },
        400: {"description": "malformed JSON or NDJSON"},
        401: {"description": "missing, unknown or revoked vehicle token"},
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
async def ingest(request: Request, principal: VehicleCaller) -> dict[str, Any]:
    state = request.app.state
    limits = state.runtime.settings.ingest
    with state.limits.uploading(principal.vehicle.ref):
        body = await read_body(
            request, limits.max_body_bytes, "ingest.max_body_bytes", limits.body_timeout_s, "ingest.body_timeout_s"
        )
        result = await run_in_threadpool(
            state.runtime.ingest.ingest_body, principal.vehicle, body, request.headers.get("content-type")
        )
    return result.to_dict()
