"""Read and control routes: records (analyst/officer), consents (vehicle/officer), stats, health."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from onshore import clock
from onshore.auth import Principal, Role
from onshore.errors import NotFoundError
from onshore.metrics import CONTENT_TYPE
from onshore.model import LifecycleEvent
from onshore.pipeline.admit import INT64_MAX
from onshore.web.auth import OfficerOrAuditor, VehicleCaller, require

router = APIRouter()
Monitor = Annotated[Principal, Depends(require(Role.MONITOR, Role.OFFICER))]
RegionReader = Annotated[Principal, Depends(require(Role.ANALYST, Role.OFFICER, region_param="region"))]


@router.get(
    "/v1/health",
    tags=["meta"],
    summary="Liveness, the regions served, and which dependency is down",
    responses={503: {"description": "a region's database or (distributed) NATS is down: status degraded"}},
)
def health(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    dependencies = runtime.health()
    down = "down" in dependencies["database"].values() or dependencies.get("bus") == "down"
    body = {
        "status": "degraded" if down else "ok",
        "regions": {n: r.jurisdiction for n, r in runtime.regions.items()},
        "dependencies": dependencies,
    }
    return JSONResponse(body, status_code=503 if down else 200)


@router.get(
    "/metrics",
    tags=["meta"],
    summary="Prometheus metrics: records in and out, drops by reason, refusals, queue depth, latencies",
    response_class=Response,
)
def metrics(request: Request, _principal: Monitor) -> Response:
    return Response(request.app.state.runtime.metrics_text(), media_type=CONTENT_TYPE)


@router.get("/v1/records", tags=["records"], summary="Query one region's stored records")
def get_records(
    request: Request,
    principal: RegionReader,
    region: str = Query(description="the region to read; an analyst may read only their own"),
    signal: str | None = Query(default=None, max_length=200),
    category: Literal["personal", "sensitive_personal", "important", "general"] | None = None,
    since_ms: int | None = Query(default=None, ge=0, le=INT64_MAX),
    until_ms: int | None = Query(default=None, ge=0, le=INT64_MAX),
    after_id: int = Query(default=0, ge=0, le=INT64_MAX, description="cursor: the last id of the previous page"),
    limit: int = Query(default=100, ge=1, le=1000),
    purpose: str = Query(default="analysis", pattern=r"^[a-z][a-z0-9_]{0,63}$", description="why you query"),
) -> dict[str, Any]:
    regions = request.app.state.runtime.regions
    if region not in regions:
        raise NotFoundError(f"region {region!r} is not configured; configured: {', '.join(regions)}")
    store = regions[region].store
    rows = regions[region].open_rows(
        store.query_records(
            signal=signal, category=category, since_ms=since_ms, until_ms=until_ms, after_id=after_id, limit=limit
        )
    )
    store.append_events(
        [
            LifecycleEvent(
                kind="query",
                region=region,
                at_ms=clock.now_ms(),
                actor_role=principal.role,
                purpose=purpose,
                counts={"records": len(rows)},
            )
        ]
    )
    for row in rows:
        row["value"] = orjson.loads(row["value"]) if row["value"] is not None else None
        row["categories"] = row["categories"].split(",")
        row["tags"] = row["tags"].split(",") if row["tags"] else []
    return {"region": region, "records": rows, "next_after_id": rows[-1]["id"] if rows else None}


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    level: Literal["ordinary", "separate"] = "ordinary"
    validity: str | None = Field(
        default=None,
        max_length=16,
        description="one of the pack's consent durations (trip, 7d, 90d, 365d); omit for until withdrawn where allowed",
    )
    profile: str | None = Field(default=None, max_length=64, description="the vehicle's driver profile, if any")


@router.get("/v1/consents", tags=["consent"], summary="What this vehicle may collect now (vehicle token)")
def list_consents(
    request: Request, principal: VehicleCaller, profile: str | None = Query(default=None, max_length=64)
) -> dict[str, Any]:
    consents = request.app.state.runtime.consents
    try:
        in_force = consents.in_force(consents.subject_at_vehicle(principal.vehicle, profile))
    except NotFoundError:  # nobody bound to the vehicle: nothing may be collected that needs consent
        in_force = []
    return {"consents": consents.collection(principal.vehicle, profile), "in_force": in_force}


@router.post("/v1/consents", tags=["consent"], summary="Grant consent from the vehicle's screen")
def grant_consent(request: Request, principal: VehicleCaller, body: ConsentRequest) -> dict[str, Any]:
    consents = request.app.state.runtime.consents
    subject = consents.subject_at_vehicle(principal.vehicle, body.profile)
    change = consents.grant(subject, body.purpose, body.level, body.validity, actor_role="vehicle")
    return {
        "purpose": change.purpose,
        "level": change.level,
        "expires_ms": change.expires_ms,
        "ledger_index": change.ledger_index,
    }


@router.delete("/v1/consents/{purpose}", tags=["consent"], summary="Withdraw consent from the vehicle's screen")
def withdraw_consent(
    request: Request, principal: VehicleCaller, purpose: str, profile: str | None = Query(default=None, max_length=64)
) -> dict[str, Any]:
    consents = request.app.state.runtime.consents
    change = consents.withdraw(consents.subject_at_vehicle(principal.vehicle, profile), purpose, actor_role="vehicle")
    return {"purpose": change.purpose, "withdrawn": True, "ledger_index": change.ledger_index}


@router.get("/v1/stats", tags=["records"], summary="Records per region and category (officer)")
async def stats(request: Request, _principal: OfficerOrAuditor) -> dict[str, Any]:
    return await run_in_threadpool(region_stats, request.app.state.runtime)


def region_stats(runtime: Any) -> dict[str, Any]:
    """Per region: records, by category, in sensitive zones, unclassified signals, and camera frames."""
    out: dict[str, Any] = {}
    for name, region in runtime.regions.items():
        store = region.store
        out[name] = {
            "jurisdiction": region.jurisdiction,
            "records": store.count_records(),
            "by_category": store.counts_by_category(),
            "zone_records": store.count_zone_records(),
            "unclassified_signals": [u["signal"] for u in store.unclassified()],
            "frames": runtime.frames.stats(region),
        }
    return {"regions": out}
