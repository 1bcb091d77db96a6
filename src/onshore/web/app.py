"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import onshore
from onshore.auth import Authenticator
from onshore.border.http import router as border_router
from onshore.dashboard import add_dashboard, browser_error
from onshore.errors import ClientDisconnectedError, OnshoreError, PayloadTooLargeError, RequestTimeoutError
from onshore.ingest.fleet_telemetry.http import PATH as FLEET_TELEMETRY_PATH
from onshore.ingest.fleet_telemetry.http import router as fleet_telemetry_router
from onshore.ingest.http import router as ingest_router
from onshore.ledger.http import router as ledger_router
from onshore.registers.http import router as registers_router
from onshore.reports.http import router as reports_router
from onshore.rights.http import router as rights_router
from onshore.runtime import Runtime
from onshore.vision.http import router as frames_router
from onshore.web.auth import document_roles
from onshore.web.docs import add_docs
from onshore.web.limits import BodyGuard, VehicleLimits
from onshore.web.logs import AccessLogMiddleware
from onshore.web.routes import router as main_router

logger = logging.getLogger("onshore")
# Routes that read their own bodies, with their own limits and deadlines (ingest.*, frames.*).
STREAMING_ROUTES = frozenset({"/v1/ingest", FLEET_TELEMETRY_PATH, "/v1/frames"})
# After these the rest of the body may still be on its way: the connection is closed, not reused.
_CLOSE_AFTER = (PayloadTooLargeError, RequestTimeoutError, ClientDisconnectedError)


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    headers = {"Connection": "close"} if status in (408, 413) else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _retention_loop(runtime: Runtime, interval_s: int) -> None:
    """The server's scheduled retention job (also `onshore retention run`)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(runtime.retention.run)
        except OnshoreError as exc:  # a failed run is retried at the next interval
            logger.error("retention run failed: %s", exc.message)


def create_app(runtime: Runtime) -> FastAPI:
    """Build the API over ``runtime``; every route authenticates a role-bound token."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        interval = runtime.settings.retention.interval_s
        task = asyncio.create_task(_retention_loop(runtime, interval)) if interval else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        lifespan=lifespan,
        title="onshore",
        version=onshore.__version__,
        description="Keeps connected-vehicle data in the country that collected it.",
        docs_url=None,  # served from the package by web/docs.py, never from a CDN
        redoc_url=None,
    )
    settings = runtime.settings
    app.state.runtime = runtime
    app.state.limits = VehicleLimits(settings.limits)
    app.state.auth = Authenticator(
        settings.tokens, runtime.vehicles, runtime.subjects, limits=app.state.limits, regions=runtime.regions
    )
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.server.max_body_bytes,
        timeout_s=settings.server.body_timeout_s,
        exempt=STREAMING_ROUTES,
    )
    app.add_middleware(AccessLogMiddleware)

    metrics = runtime.metrics

    @app.exception_handler(OnshoreError)
    async def _onshore_error(request: Request, exc: OnshoreError) -> Response:
        metrics.refusal(exc.status, exc.code)
        if (shown := browser_error(request, exc)) is not None:  # a dashboard page in a browser
            return shown
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if isinstance(exc, _CLOSE_AFTER):
            headers["Connection"] = "close"
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "")} for e in exc.errors()
        ]
        first = details[0] if details else {"field": "", "reason": "invalid request"}
        metrics.refusal(422, "validation_failed")
        return _error(422, "validation_failed", f"{first['field']}: {first['reason']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        metrics.refusal(exc.status_code, code)
        return _error(exc.status_code, code, str(exc.detail))

    app.include_router(ingest_router)
    app.include_router(fleet_telemetry_router)
    app.include_router(main_router)
    app.include_router(rights_router)
    app.include_router(ledger_router)
    app.include_router(border_router)
    app.include_router(frames_router)
    app.include_router(registers_router)
    app.include_router(reports_router)
    document_roles(app)
    add_docs(app)
    add_dashboard(app)
    return app
