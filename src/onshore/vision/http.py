"""Camera frames over HTTP: ``POST /v1/frames`` from vehicles; anonymised and raw reads for staff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from onshore import clock
from onshore.auth import Principal, Role
from onshore.errors import NotFoundError, UnsupportedMediaTypeError
from onshore.ingest.http import accepted
from onshore.vision.ingest import POSITION_HEADER, parse_frame_meta
from onshore.web.auth import VehicleCaller, require
from onshore.web.limits import read_body

router = APIRouter(tags=["frames"])
FrameReader = Annotated[Principal, Depends(require(Role.ANALYST, Role.OFFICER, region_param="region"))]
RawFrameReader = Annotated[Principal, Depends(require(Role.OFFICER, region_param="region"))]

FRAME_EXAMPLE = {
    "region": "cn",
    "msg_id": "front-000123",
    "stored": True,
    "duplicate": False,
    "dropped": None,
    "rule_id": "cn.frame.external",
    "categories": ["important", "personal"],
    "faces": 2,
    "plates": 1,
    "raw_kept": False,
    "conditions": [],
    "ledger_index": 57,
}
_IMAGE_TYPES = ("image/jpeg", "image/png")


@router.post(
    "/v1/frames",
    summary="Upload one camera frame (JPEG or PNG); it is classified, anonymised and stored in-region",
    responses={
        200: {
            "description": "what happened to the frame: stored, duplicate, or dropped "
            "(sensitive_zone, no_consent, hard_conditions)",
            "content": {"application/json": {"example": FRAME_EXAMPLE}},
        },
        401: {"description": "missing, unknown or revoked vehicle token"},
        408: {"description": "the body did not arrive within frames.body_timeout_s"},
        413: {"description": "over frames.max_bytes, frames.max_pixels or frames.max_pixels_per_byte"},
        415: {"description": "not a JPEG or PNG (by content type or by its bytes)"},
        422: {"description": "corrupt, truncated, inconsistent or empty image, or invalid metadata; nothing stored"},
        429: {"description": "this vehicle is over limits.vehicle_rate_per_s or limits.vehicle_max_in_flight"},
        202: {"description": "a gateway (distributed mode) published the frame; fetch its outcome at Location"},
        503: {
            "description": "frames.max_in_flight frames being processed, or a gateway could not publish to NATS; "
            "retry after Retry-After seconds"
        },
    },
    openapi_extra={
        "parameters": [
            {"name": "msg_id", "in": "query", "required": True, "schema": {"type": "string"}},
            {
                "name": "camera",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "camera id, e.g. front, rear, cabin; the pack's camera rules classify it",
            },
            {
                "name": "ts",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "epoch ms or RFC 3339",
            },
            {
                "name": POSITION_HEADER,
                "in": "header",
                "schema": {"type": "string", "pattern": r"^-?[0-9]{1,3}(\.[0-9]+)?,-?[0-9]{1,3}(\.[0-9]+)?$"},
                "description": "where the frame was taken: `<lat>,<lon>` in decimal degrees (lat -90..90, "
                "lon -180..180). A header, never the query string, so it stays out of every access log",
            },
            {"name": "purpose", "in": "query", "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in _IMAGE_TYPES},
        },
    },
)
async def upload_frame(request: Request, principal: VehicleCaller) -> Any:
    state = request.app.state
    runtime = state.runtime
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in _IMAGE_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type {media or '(none)'!r} is not accepted; send the frame as image/jpeg or image/png"
        )
    meta = parse_frame_meta(
        dict(request.query_params),
        runtime.settings.ingest,
        now_ms=clock.now_ms(),
        position=request.headers.get(POSITION_HEADER),
    )
    frames = runtime.settings.frames
    with state.limits.uploading(principal.vehicle.ref):  # a vehicle's share of uploads in progress (429 over it)
        # The body is read before a processing place is taken: slow senders hold no place.
        body = await read_body(
            request, frames.max_bytes, "frames.max_bytes", frames.body_timeout_s, "frames.body_timeout_s"
        )
        with runtime.frames.slot():  # bounded: a flood of frames gets 503 instead of exhausting memory
            queue = runtime.queue
            if queue is not None:  # a gateway: the frame goes to the region's workers, the answer is a receipt
                return await run_in_threadpool(
                    lambda: accepted(queue.enqueue(runtime.frames.admit(principal.vehicle, body, meta)))
                )
            result = await run_in_threadpool(runtime.frames.ingest, principal.vehicle, body, meta)
    return result.to_dict()


async def _image(request: Request, region: str, read: Any, *args: Any, **kw: Any) -> Response:
    """The image ``read(region, *args)`` returns, uncached (the route's dependency has authorised the caller)."""
    regions = request.app.state.runtime.regions
    if region not in regions:
        raise NotFoundError(f"region {region!r} is not configured; configured: {', '.join(regions)}")
    image, media_type, *_ = await run_in_threadpool(read, regions[region], *args, **kw)
    return Response(content=image, media_type=media_type, headers={"Cache-Control": "no-store"})


_VEHICLE = Path(pattern=r"^[0-9a-f]{32}$", description="the vehicle's pseudonym (vehicle_ref)")
_MSG = Path(pattern=r"^[A-Za-z0-9._:\-]{1,128}$", description="the frame's message id")


@router.get(
    "/v1/frames/{region}/{vehicle_ref}/{msg_id}",
    summary="A stored frame, anonymised (analyst of the region, officer)",
    response_class=Response,
    responses={200: {"content": {t: {} for t in _IMAGE_TYPES}}, 404: {"description": "no such frame"}},
)
async def get_frame(
    request: Request, _principal: FrameReader, region: str, vehicle_ref: str = _VEHICLE, msg_id: str = _MSG
) -> Response:
    frames = request.app.state.runtime.frames
    return await _image(request, region, frames.frame, vehicle_ref, msg_id)


@router.get(
    "/v1/frames/{region}/{vehicle_ref}/{msg_id}/raw",
    summary="The raw frame, where the pack keeps raw frames (officer only; every read is logged)",
    response_class=Response,
    responses={200: {"content": {t: {} for t in _IMAGE_TYPES}}, 404: {"description": "no raw frame kept"}},
)
async def get_raw_frame(
    request: Request, _principal: RawFrameReader, region: str, vehicle_ref: str = _VEHICLE, msg_id: str = _MSG
) -> Response:
    frames = request.app.state.runtime.frames
    return await _image(request, region, frames.raw_frame, vehicle_ref, msg_id, actor_role="officer")
