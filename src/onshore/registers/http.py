"""The registers API (officer): ``/v1/registers/{register}`` to list and record, ``…/{id}`` to read and change,
``/v1/registers/rights_request/{id}/handle`` to carry a rights request out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi import Path as FastApiPath
from fastapi.concurrency import run_in_threadpool

from onshore.registers.service import RegisterService
from onshore.web.auth import Officer

router = APIRouter(prefix="/v1/registers", tags=["registers"])
_REGISTER = r"^(rights_request|incident|complaint|provision)$"


def _registers(request: Request) -> RegisterService:
    registers: RegisterService = request.app.state.runtime.registers
    return registers


# An entry id: a 64-bit row id (a number beyond it is a 422, never a database error).
EntryId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1, description="the entry's id")]


@router.get("/{register}", summary="A register's entries, oldest first")
def list_entries(
    request: Request,
    _principal: Officer,
    register: str,
    region: str | None = Query(default=None, max_length=32),
    year: int | None = Query(default=None, ge=1970, le=2199),
    status: str | None = Query(default=None, pattern=r"^[a-z_]{1,16}$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    entries = _registers(request).list_entries(register, region=region, year=year, status=status, limit=limit)
    return {"entries": [e.to_dict() for e in entries]}


@router.post("/{register}", status_code=201, summary="Record an entry (a ledger event)")
def add_entry(
    request: Request,
    principal: Officer,
    register: str,
    body: Annotated[dict[str, Any], Body(description="the entry's fields (docs/reports.md)")],
    region: str = Query(default="cn", max_length=32, description="the region the entry belongs to"),
) -> dict[str, Any]:
    return _registers(request).add(register, region, body, actor_role=principal.role).to_dict()


@router.get("/{register}/{entry_id}", summary="One entry")
def get_entry(request: Request, _principal: Officer, register: str, entry_id: EntryId) -> dict[str, Any]:
    return _registers(request).get(register, entry_id).to_dict()


@router.patch("/{register}/{entry_id}", summary="Change fields of an entry (a new version, a ledger event)")
def change_entry(
    request: Request, principal: Officer, register: str, entry_id: EntryId, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return _registers(request).change(register, entry_id, body, actor_role=principal.role).to_dict()


@router.post("/rights_request/{entry_id}/handle", summary="Carry out a rights request (an erasure runs now)")
async def handle_request(request: Request, principal: Officer, entry_id: EntryId) -> dict[str, Any]:
    registers = _registers(request)
    entry = await run_in_threadpool(registers.handle, entry_id, actor_role=principal.role)
    return entry.to_dict()
