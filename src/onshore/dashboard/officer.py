"""The officer's pages: overview, transfers abroad, bases (approve one), registers, report downloads."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from onshore.border.transfers import TransferFilter
from onshore.dashboard import views
from onshore.dashboard.render import page
from onshore.dashboard.session import DeskOfficer, check_csrf, read_form
from onshore.errors import InputError
from onshore.reports.http import MEDIA, ReportRequest
from onshore.reports.service import ReportService

router = APIRouter(prefix="/desk", tags=["dashboard"])
_DEST = re.compile(r"^[A-Z]{2,3}$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _date(text: str | None, what: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def _matching(pattern: re.Pattern[str], text: str | None, what: str) -> str | None:
    if not text:
        return None
    if not pattern.match(text):
        raise InputError(f"{what} {text[:64]!r} is not valid (expected {pattern.pattern})")
    return text


@router.get("", response_class=HTMLResponse, summary="Officer: overview")
async def overview(request: Request, principal: DeskOfficer) -> HTMLResponse:
    data = await run_in_threadpool(views.overview, request.app.state.runtime)
    return page(request, "overview.html", principal=principal, **data)


@router.get("/border", response_class=HTMLResponse, summary="Officer: transfers abroad with filters")
async def border(
    request: Request,
    principal: DeskOfficer,
    region: str = "cn",
    status: str = "",
    since: str = "",
    until: str = "",
    destination: str = "",
    purpose: str = "",
) -> HTMLResponse:
    runtime = request.app.state.runtime
    if status not in ("", "released", "denied", "imported"):
        raise InputError(f"status {status[:32]!r} is not one of released, denied, imported")
    where = TransferFilter(
        status=status or None,
        since=_date(since, "since"),
        until=_date(until, "until"),
        destination=_matching(_DEST, destination, "destination"),
        purpose=_matching(_PURPOSE, purpose, "purpose"),
        limit=1000,
    )
    runtime.border.region(region)  # 404 for an unknown region
    rows = await run_in_threadpool(views.transfers, runtime, region, where)
    filters = {"region": region, "status": status, "since": since, "until": until}
    filters |= {"destination": destination, "purpose": purpose}
    return page(
        request, "border.html", principal=principal, transfers=rows, filters=filters, regions=list(runtime.regions)
    )


@router.get("/bases", response_class=HTMLResponse, summary="Officer: transfer bases, validity, usage, thresholds")
async def bases(request: Request, principal: DeskOfficer) -> HTMLResponse:
    data = await run_in_threadpool(views.bases, request.app.state.runtime)
    return page(request, "bases.html", principal=principal, **data)


@router.post("/bases/{basis_id}/approve", summary="Officer: approve a draft basis from the page (CSRF-checked)")
async def approve(request: Request, principal: DeskOfficer, basis_id: str) -> Response:
    form = await read_form(request)
    check_csrf(request, form.get("csrf"))
    border = request.app.state.runtime.border
    region = border.bases.get(basis_id).spec.region
    approved_on = _date(form.get("approved_on"), "approved_on") or border.today(region)
    reference = (form.get("reference") or "").strip()[:120] or None
    await run_in_threadpool(
        lambda: border.approve_basis(basis_id, approved_on=approved_on, actor_role=principal.role, reference=reference)
    )
    return RedirectResponse("/desk/bases", status_code=303)


@router.get("/registers", response_class=HTMLResponse, summary="Officer: rights requests, incidents, complaints")
async def registers(request: Request, principal: DeskOfficer) -> HTMLResponse:
    data = await run_in_threadpool(views.registers, request.app.state.runtime)
    return page(request, "registers.html", principal=principal, **data)


@router.get("/reports", response_class=HTMLResponse, summary="Officer: report downloads")
def reports(request: Request, principal: DeskOfficer) -> HTMLResponse:
    runtime = request.app.state.runtime
    year = runtime.border.today().year
    jurisdictions = sorted({r.jurisdiction for r in runtime.regions.values()})
    return page(
        request, "reports.html", principal=principal, years=range(year, year - 5, -1), jurisdictions=jurisdictions
    )


@router.post("/reports", summary="Officer: write a report and download it (CSRF-checked)")
async def download_report(request: Request, principal: DeskOfficer) -> Response:
    form = await read_form(request)
    check_csrf(request, form.get("csrf"))
    try:
        asked = ReportRequest.model_validate({k: v for k, v in form.items() if k != "csrf"})
    except ValueError as exc:
        raise InputError(f"the report form is not valid: {str(exc).splitlines()[0]}") from None
    service = ReportService(request.app.state.runtime)
    with tempfile.TemporaryDirectory(prefix="onshore-desk-report-") as folder:
        written = await run_in_threadpool(
            service.generate,
            asked.kind,
            asked.year,
            asked.lang,
            asked.format,
            Path(folder),
            jurisdiction=asked.jurisdiction,
        )
        content = written.path.read_bytes()
    headers = {"Content-Disposition": f'attachment; filename="{written.path.name}"'}
    return Response(content, media_type=MEDIA[asked.format], headers=headers)
