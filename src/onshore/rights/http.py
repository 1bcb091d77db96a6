"""Routes for drivers and owners (`subject` role) and for the officer acting on their behalf."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from onshore.auth import Principal, Role
from onshore.web.auth import SubjectCaller, require

router = APIRouter(tags=["subject rights"])
# The subject themselves (their token names them), or the officer acting on their behalf.
SubjectOrOfficer = Annotated[Principal, Depends(require(Role.SUBJECT, Role.OFFICER, subject_param="subject_ref"))]


class SubjectConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    level: Literal["ordinary", "separate"] = "ordinary"
    validity: str | None = Field(default=None, max_length=16, description="trip, 7d, 90d, 365d; omit: until withdrawn")


@router.get("/v1/subjects/me/consents", summary="My consents in force")
def my_consents(request: Request, principal: SubjectCaller) -> dict[str, Any]:
    consents = request.app.state.runtime.consents
    return {
        "subject": principal.subject_ref,
        "consents": consents.active(principal.subject_ref),  # purpose -> level
        "in_force": consents.in_force(principal.subject_ref),  # each with what it is for, level, granted, expires
    }


@router.post("/v1/subjects/me/consents", summary="Grant a consent (owner's app)")
def grant_my_consent(request: Request, principal: SubjectCaller, body: SubjectConsentRequest) -> dict[str, Any]:
    change = request.app.state.runtime.consents.grant(
        principal.subject_ref, body.purpose, body.level, body.validity, actor_role="subject"
    )
    return {
        "purpose": change.purpose,
        "level": change.level,
        "expires_ms": change.expires_ms,
        "ledger_index": change.ledger_index,
    }


@router.delete("/v1/subjects/me/consents/{purpose}", summary="Withdraw a consent (owner's app)")
def withdraw_my_consent(request: Request, principal: SubjectCaller, purpose: str) -> dict[str, Any]:
    change = request.app.state.runtime.consents.withdraw(principal.subject_ref, purpose, actor_role="subject")
    return {"purpose": change.purpose, "withdrawn": True, "ledger_index": change.ledger_index}


@router.post("/v1/subjects/{subject_ref}/access", summary="Access request: a copy of all data held about the subject")
async def access(request: Request, principal: SubjectOrOfficer, subject_ref: str) -> dict[str, Any]:
    requests = request.app.state.runtime.requests
    return await run_in_threadpool(requests.access_bundle, subject_ref, actor_role=principal.role)


@router.post("/v1/subjects/{subject_ref}/erasure", summary="Erasure request: destroy keys, purge data, report")
async def erasure(request: Request, principal: SubjectOrOfficer, subject_ref: str) -> dict[str, Any]:
    requests = request.app.state.runtime.requests
    report = await run_in_threadpool(requests.erase, subject_ref, actor_role=principal.role)
    return report.to_dict()
