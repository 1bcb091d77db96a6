"""The auditor's view: checkpoints and keys, events with filters, an inclusion proof, and verification of an
export bundle's manifest or of a report against the region's signed checkpoints, from the browser.

The page's script sends an uploaded file as the raw request body (with the CSRF token in a header), so no
multipart parser is needed; the answer is a verdict fragment the script puts in place.
"""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from onshore.border.bundles import verify_manifest
from onshore.dashboard import views
from onshore.dashboard.render import fragment, page
from onshore.dashboard.session import DeskAuditor, check_csrf
from onshore.errors import InputError, PayloadTooLargeError
from onshore.ledger.checkpoint import NoteVerifier
from onshore.ledger.store import MerkleLog
from onshore.pipeline.admit import INT64_MAX
from onshore.reports.verify import MAX_REPORT_BYTES, verify_report

if TYPE_CHECKING:
    from onshore.runtime import Runtime

router = APIRouter(prefix="/desk/audit", tags=["dashboard"])
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


async def _upload(request: Request, limit: int) -> bytes:
    check_csrf(request, request.headers.get("x-csrf-token"))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the upload is larger than {limit // (1024 * 1024)} MiB")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(f"the upload is larger than {limit // (1024 * 1024)} MiB")
    if not body:
        raise InputError("nothing was uploaded: choose a file")
    return body


@router.get("", response_class=HTMLResponse, summary="Auditor: checkpoints, events, proofs, verification")
async def audit(
    request: Request,
    principal: DeskAuditor,
    region: str = "cn",
    kind: str = "",
    start: int | None = Query(default=None, ge=0, le=INT64_MAX),
    count: int = Query(default=100, ge=1, le=1000),
) -> HTMLResponse:
    runtime = request.app.state.runtime
    if kind and not _KIND.match(kind):
        raise InputError(f"kind {kind[:64]!r} is not an event kind")
    checkpoints = await run_in_threadpool(views.checkpoints, runtime)
    events = await run_in_threadpool(views.events, runtime, region, start, kind or None, count)
    return page(
        request,
        "audit.html",
        principal=principal,
        checkpoints=checkpoints,
        events=events,
        filters={"region": region, "kind": kind, "start": "" if start is None else start, "count": count},
        regions=list(runtime.regions),
    )


@router.get("/proof", response_class=HTMLResponse, summary="Auditor: an event's inclusion proof, verified")
async def proof(
    request: Request,
    principal: DeskAuditor,
    region: str = "cn",
    index: int = Query(ge=0, le=INT64_MAX),
    size: int | None = Query(default=None, ge=1, le=INT64_MAX),
) -> HTMLResponse:
    runtime = request.app.state.runtime
    size = size or runtime.ledger.tree_size(region)
    data = await run_in_threadpool(views.inclusion, runtime, region, index, size)
    return page(request, "proof.html", principal=principal, region=region, index=index, size=size, **data)


@router.post("/verify/bundle", response_class=HTMLResponse, summary="Auditor: verify a bundle manifest (raw body)")
async def verify_bundle_manifest(request: Request, _principal: DeskAuditor, region: str = "cn") -> HTMLResponse:
    body = await _upload(request, MAX_MANIFEST_BYTES)
    try:
        manifest = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError("the upload is not JSON: choose the bundle's manifest.json") from None
    if not isinstance(manifest, dict):
        raise InputError("manifest.json must be a JSON object")
    runtime = request.app.state.runtime
    runtime.border.region(region)  # 404 for an unknown region
    keys = [NoteVerifier.from_vkey(k.vkey) for k in runtime.ledger.public_keys(region)]
    problems = await run_in_threadpool(verify_manifest, manifest, keys)
    section = manifest.get("ledger")
    ledger: dict[str, Any] = section if isinstance(section, dict) else {}
    if not problems:
        problems = await run_in_threadpool(_stored_log_problems, runtime, region, ledger)
    return fragment(
        request,
        "verdict.html",
        what="bundle",
        ok=not problems,
        problems=problems,
        facts={
            "transfer_id": manifest.get("transfer_id"),
            "purpose": manifest.get("purpose"),
            "destination": manifest.get("destination"),
            "tree_size": ledger.get("tree_size"),
            "root": ledger.get("root"),
        },
    )


def _stored_log_problems(runtime: Runtime, region: str, ledger: dict[str, Any]) -> list[str]:
    """The region's stored log must still give the bundle's root at its size (not rewritten since)."""
    reg = runtime.regions[region]
    size = int(ledger.get("tree_size") or 0)
    root = base64.b64decode(str(ledger.get("root") or ""))
    log = MerkleLog(region)
    with reg.store.read("desk verify bundle") as conn:
        if log.tree_size(conn) < size or log.root(conn, size) != root:
            return [f"region {region}: the stored log does not give the bundle's root at size {size}"]
    return []


@router.post("/verify/report", response_class=HTMLResponse, summary="Auditor: verify a report (raw body)")
async def verify_uploaded_report(request: Request, _principal: DeskAuditor) -> HTMLResponse:
    body = await _upload(request, MAX_REPORT_BYTES)
    runtime = request.app.state.runtime
    with tempfile.TemporaryDirectory(prefix="onshore-desk-verify-") as folder:
        path = Path(folder) / "report"
        path.write_bytes(body)
        verdict = await run_in_threadpool(verify_report, runtime, path)
    return fragment(
        request,
        "verdict.html",
        what="report",
        ok=verdict.ok,
        problems=verdict.problems,
        facts={"kind": verdict.kind, "year": verdict.year, "figures": verdict.figures_checked},
        checkpoints=verdict.checkpoints,
    )
