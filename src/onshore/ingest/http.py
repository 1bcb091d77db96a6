"""HTTP ingest: ``POST /v1/ingest`` takes a JSON array or NDJSON batch from an authenticated vehicle, or from a
gateway for one vehicle registered to it, named by the ``Onshore-Vin`` header (one vehicle per request).

Embedded, the answer is the batch's outcome (200). On a gateway (``[bus] kind = "nats"``) the admitted batch is
published to the region's stream and the answer is a receipt (202) once the stream holds it; the outcome is then
fetched by the receipt's id (``GET /v1/receipts/{id}``; a gateway token names the vehicle with ``Onshore-Vin``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from onshore.auth import Principal, Role
from onshore.errors import InputError, NotFoundError
from onshore.ingest.bus import QueueBus
from onshore.web.auth import require
from onshore.web.limits import read_body

router = APIRouter(tags=["ingest"])
VIN_HEADER = "Onshore-Vin"
VehicleOrGateway = Annotated[Principal, Depends(require(Role.VEHICLE, Role.GATEWAY))]


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
    summary="Ingest a batch of signal records from one vehicle (its token, or a gateway's with Onshore-Vin)",
    responses={
        200: {
            "description": "per-batch counts",
            "content": {"application/json": {"example": INGEST_EXAMPLE}},
        },
        202: {
            "description": "a gateway (distributed mode) published the admitted batch; fetch its outcome at Location",
            "content": {"application/json": {"example": RECEIPT_EXAMPLE}},
        },
        400: {"description": "malformed JSON or NDJSON; a gateway without the Onshore-Vin header"},
        401: {"description": "missing, unknown or revoked vehicle token"},
        403: {"description": "the Onshore-Vin vehicle is not registered to this gateway (vehicle_not_registered)"},
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
) -> Any:
    state = request.app.state
    runtime = state.runtime
    limits = runtime.settings.ingest
    content_type = request.headers.get("content-type")
    vehicle = await _vehicle_of(runtime, principal, vin)
    with state.limits.upload_place(principal):
        body = await read_body(
            request, limits.max_body_bytes, "ingest.max_body_bytes", limits.body_timeout_s, "ingest.body_timeout_s"
        )
        queue: QueueBus | None = runtime.queue
        if queue is not None:
            return await run_in_threadpool(
                lambda: accepted(queue.enqueue(runtime.ingest.admit_body(vehicle, body, content_type)))
            )
        result = await run_in_threadpool(runtime.ingest.ingest_body, vehicle, body, content_type)
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
    principal: VehicleOrGateway,
    receipt_id: str = Path(pattern=r"^[0-9a-f]{32}$", description="the receipt a gateway answered with"),
    vin: Annotated[
        str | None,
        Header(alias=VIN_HEADER, max_length=32, description="gateway tokens: the vehicle the batch was sent for"),
    ] = None,
) -> dict[str, Any]:
    runtime = request.app.state.runtime
    queue: QueueBus | None = runtime.queue
    if queue is None:
        raise NotFoundError(
            "this onshore runs embedded: every batch is answered with its outcome directly and no receipt is kept"
        )
    vehicle = await _vehicle_of(runtime, principal, vin)
    return await run_in_threadpool(queue.receipt, vehicle.region, receipt_id, vehicle.ref)


async def _vehicle_of(runtime: Any, principal: Principal, vin: str | None) -> Any:
    """The vehicle a request is about: the token's own, or the one a gateway names in ``Onshore-Vin`` (which must
    be registered to it; its market and region come from the registry).

    Raises:
        InputError (400): a gateway sent no ``Onshore-Vin``. VehicleNotRegisteredError (403): not its vehicle.
    """
    if principal.vehicle is None and not vin:
        raise InputError(f"a gateway names the vehicle of a batch: send the {VIN_HEADER} header")
    speaking_for = runtime.vehicles.speaking_for
    return (await run_in_threadpool(speaking_for, principal, [vin or ""], place=f"the {VIN_HEADER} header"))[0]
