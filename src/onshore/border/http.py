"""The border API: transfer bases (officer; auditor reads), export decisions and releases (analyst, officer).

- ``GET/POST /v1/border/bases``, ``GET /v1/border/bases/{id}``, ``POST …/{id}/approve``, ``POST …/{id}/revoke``;
- ``GET /v1/border/exports``: releases, denials (with the reasons) and imported earlier transfers, filtered;
- ``POST /v1/border/exports/decide``: the dry run (``at`` may ask "what if on that date");
- ``POST /v1/border/exports``: decide and release; 201 with the manifest, or 403 ``transfer_denied`` with the
  decision in ``details`` (the denial is logged all the same);
- ``GET /v1/border/exports/{transfer_id}/manifest`` and ``…/files/{name}``: the bundle, for the requester.

An analyst is bound to one region and may ask only for that region's data; the requester recorded is the
token's role, whatever the body says.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from onshore.auth import Principal, Role
from onshore.border.bases import BasisSpec
from onshore.border.dates import LegalDate, LegalDateTime
from onshore.border.requests import ExportRequest
from onshore.border.service import BorderService
from onshore.border.transfers import TransferFilter
from onshore.errors import NotFoundError, TransferDeniedError
from onshore.web.auth import AnalystOrOfficer, Officer, OfficerOrAuditor, require

router = APIRouter(prefix="/v1/border", tags=["border"])

_TRANSFER_ID = re.compile(r"^xf-[0-9a-f]{20}$")
# An export request names its region in the body: an analyst may ask only for their own region's data.
Requester = Annotated[Principal, Depends(require(Role.ANALYST, Role.OFFICER, region_param="region"))]


def _border(request: Request) -> BorderService:
    border: BorderService = request.app.state.runtime.border
    return border


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approved_on: LegalDate | None = Field(default=None, description="date on the approval (default: today)")
    reference: str | None = Field(default=None, max_length=120, description="approval or filing number")


@router.get("/bases", summary="Transfer bases with their status and validity on a date")
def list_bases(
    request: Request,
    _principal: OfficerOrAuditor,
    region: str | None = Query(default=None, description="only this region's bases"),
    date: Annotated[LegalDate | None, Query(description="status as of this date (default: today)")] = None,
) -> dict[str, Any]:
    border = _border(request)
    bases = border.bases.list_bases(region)
    return {"bases": [b.to_dict(date or border.today(b.spec.region)) for b in bases]}


@router.post("/bases", status_code=201, summary="Record a transfer basis as a draft (officer)")
def add_basis(request: Request, principal: Officer, body: BasisSpec) -> dict[str, Any]:
    border = _border(request)
    basis = border.add_basis(body, actor_role=principal.role)
    return basis.to_dict(border.today(basis.spec.region))


@router.get("/bases/{basis_id}", summary="One transfer basis")
def get_basis(
    request: Request,
    _principal: OfficerOrAuditor,
    basis_id: str,
    date: Annotated[LegalDate | None, Query(description="status as of this date (default: today)")] = None,
) -> dict[str, Any]:
    border = _border(request)
    basis = border.bases.get(basis_id)
    return basis.to_dict(date or border.today(basis.spec.region))


@router.post("/bases/{basis_id}/approve", summary="Approve a draft basis (officer)")
def approve_basis(request: Request, principal: Officer, basis_id: str, body: ApproveBody) -> dict[str, Any]:
    border = _border(request)
    region = border.bases.get(basis_id).spec.region
    approved_on = body.approved_on or border.today(region)
    basis = border.approve_basis(basis_id, approved_on=approved_on, actor_role=principal.role, reference=body.reference)
    return basis.to_dict(border.today(region))


@router.post("/bases/{basis_id}/revoke", summary="Revoke a basis (officer)")
def revoke_basis(request: Request, principal: Officer, basis_id: str) -> dict[str, Any]:
    border = _border(request)
    basis = border.revoke_basis(basis_id, actor_role=principal.role)
    return basis.to_dict(border.today(basis.spec.region))


def _as_requested_by(body: ExportRequest, principal: Principal) -> ExportRequest:
    """The request as the token's role made it, whatever the body says."""
    return body.model_copy(update={"requester": principal.role.value})


@router.get("/exports", summary="Transfers abroad: releases, denials with their reasons, imported earlier ones")
def list_exports(
    request: Request,
    _principal: OfficerOrAuditor,
    region: str = Query(default="cn", max_length=32),
    status: str | None = Query(default=None, pattern=r"^(released|denied|imported)$"),
    since: Annotated[LegalDate | None, Query(description="from this date (legal calendar)")] = None,
    until: Annotated[LegalDate | None, Query(description="up to this date, inclusive")] = None,
    destination: str | None = Query(default=None, pattern=r"^[A-Z]{2,3}$"),
    recipient: str | None = Query(default=None, max_length=64),
    purpose: str | None = Query(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    where = TransferFilter(
        status=status,
        since=since,
        until=until,
        destination=destination,
        recipient=recipient,
        purpose=purpose,
        limit=limit,
    )
    return {"transfers": _border(request).list_transfers(region, where)}


@router.post("/exports/decide", summary="Dry run: the decision per data class, releasing and counting nothing")
def decide_export(
    request: Request,
    principal: Requester,
    body: ExportRequest,
    at: Annotated[LegalDateTime | None, Query(description="decide as of this moment (with offset)")] = None,
) -> dict[str, Any]:
    border, export = _border(request), _as_requested_by(body, principal)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return border.decide(export, at=at).to_dict()


@router.post("/exports", status_code=201, summary="Decide and release: a bundle with its manifest, or a denial")
def run_export(request: Request, principal: Requester, body: ExportRequest) -> dict[str, Any]:
    border, export = _border(request), _as_requested_by(body, principal)
    result = border.run(export, None, actor_role=principal.role.value)
    if not result.released:
        raise TransferDeniedError(
            "the border gate denied every data class of this request; the denial is in the ledger",
            details={
                "transfer_id": result.transfer_id,
                "ledger_indexes": result.ledger_indexes,
                "decision": result.decision.to_dict(),
            },
        )
    return {"transfer_id": result.transfer_id, "ledger_indexes": result.ledger_indexes, "manifest": result.manifest}


def _bundle(request: Request, principal: Principal, transfer_id: str) -> tuple[Path, dict[str, Any]]:
    """The folder and manifest of a released bundle in a region ``principal`` may reach."""
    border = _border(request)
    if not _TRANSFER_ID.match(transfer_id):
        raise NotFoundError(f"no export {transfer_id!r}")
    for name, region in border.regions.items():
        if not principal.may_reach(name):  # the transfer id names no region: an analyst searches only their own
            continue
        folder = border.exports_dir(region) / transfer_id
        manifest = folder / "manifest.json"
        if manifest.is_file():
            return folder, orjson.loads(manifest.read_bytes())
    raise NotFoundError(f"no export {transfer_id!r} that this token may read")


@router.get("/exports/{transfer_id}/manifest", summary="The manifest of a released bundle")
def get_manifest(request: Request, principal: AnalystOrOfficer, transfer_id: str) -> dict[str, Any]:
    return _bundle(request, principal, transfer_id)[1]


@router.get("/exports/{transfer_id}/files/{name:path}", summary="A data file of a released bundle")
def get_file(request: Request, principal: AnalystOrOfficer, transfer_id: str, name: str) -> FileResponse:
    folder, manifest = _bundle(request, principal, transfer_id)
    listed = {f["name"] for f in manifest.get("files", [])}
    if name not in listed:  # only files the manifest names: no path outside the bundle
        raise NotFoundError(f"bundle {transfer_id} has no file {name!r}; files: {', '.join(sorted(listed))}")
    return FileResponse(folder / name, filename=Path(name).name)
