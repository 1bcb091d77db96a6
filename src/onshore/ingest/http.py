"""HTTP ingest: ``POST /v1/ingest`` takes a JSON array or NDJSON batch from an authenticated vehicle.

Embedded, the answer is the batch's outcome (200). On a gateway (``[bus] kind = "nats"``) the admitted batch is
published to the region's stream and the answer is a receipt (202) once the stream holds it; the outcome is then
fetched by the receipt's id (``GET /v1/receipts/{id}``), for frames too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from onshore.errors import NotFoundError
from onshore.ingest.bus import QueueBus
from onshore.web.auth import VehicleCaller
from onshore.web.limits import read_body

router = APIRouter(tags=["ingest"])


RECEIPT_EXAMPLE = {
    "receipt": "9f1c2b7e4d5a60718293a4b5c6d7e8f9",
    "status": "pending",
    "region": "cn",
    "location": "/v1/receipts/9f1c2b7e4d5a60718293a4b5c6d7e8f9",
}

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
        202: {
            "description": "a gateway (distributed mode) published the admitted batch; fetch its outcome at Location",
            "content": {"application/json": {"example": RECEIPT_EXAMPLE}},
        },
        400: {"description": "malformed JSON or NDJSON"},
        401: {"description": "missing, unknown or revoked vehicle token"},
        408: {"description": "the body did not arrive within ingest.body_timeout_s"},
        413: {"description": "body or batch over the configured limits"},
        415: {"description": "content type other than JSON or NDJSON"},
        422: {"description": "invalid records; details list each; nothing was stored"},
        429: {"description": "this vehicle is over limits.vehicle_rate_per_s or limits.vehicle_max_in_flight"},
        503: {"description": "a gateway could not publish to NATS JetStream; retry after Retry-After seconds"},
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
async def ingest(request: Request, principal: VehicleCaller) -> Any:
    state = request.app.state
    runtime = state.runtime
    limits = runtime.settings.ingest
    content_type = request.headers.get("content-type")
    with state.limits.uploading(principal.vehicle.ref):
        body = await read_body(
            request, limits.max_body_bytes, "ingest.max_body_bytes", limits.body_timeout_s, "ingest.body_timeout_s"
        )
        queue: QueueBus | None = runtime.queue
        if queue is not None:
            return await run_in_threadpool(
                lambda: accepted(queue.enqueue(runtime.ingest.admit_body(principal.vehicle, body, content_type)))
            )
        result = await run_in_threadpool(runtime.ingest.ingest_body, principal.vehicle, body, content_type)
    return result.to_dict()


def accepted(receipt: Any) -> JSONResponse:
    """A gateway's answer for a published batch: 202, the receipt, and where its outcome will be."""
    return JSONResponse(receipt.to_dict(), status_code=202, headers={"Location": receipt.location})


@router.get(
    "/v1/receipts/{receipt_id}",
    summary="The outcome of a batch or frame a gateway took (distributed mode; the vehicle that sent it)",
    responses={
        200: {
            "description": "status pending; or done with result (the answer embedded mode gives); or failed with "
            "error (the API's error shape) and http_status (what embedded mode would have answered)",
        },
        404: {"description": "no such receipt of this vehicle, expired (bus.receipt_ttl_s), or embedded mode"},
    },
)
async def receipt(
    request: Request,
    principal: VehicleCaller,
    receipt_id: str = Path(pattern=r"^[0-9a-f]{32}$", description="the receipt a gateway answered with"),
) -> dict[str, Any]:
    queue: QueueBus | None = request.app.state.runtime.queue
    if queue is None:
        raise NotFoundError(
            "this onshore runs embedded: every batch is answered with its outcome directly and no receipt is kept"
        )
    return await run_in_threadpool(queue.receipt, principal.vehicle.region, receipt_id, principal.vehicle.ref)
