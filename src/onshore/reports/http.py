"""The reports API: ``POST /v1/reports`` writes a report and answers it as a file.

The officer writes any report; a subject writes only their own access copy (``kind: access``, ``subject``: their
own ref), recorded in the ledger as their request.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from onshore.auth import Principal, Role
from onshore.errors import ForbiddenError
from onshore.reports.service import ReportService
from onshore.web.auth import require

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MEDIA = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["annual", "outbound", "inventory", "risk", "selfassessment", "access"]
    year: int | None = Field(default=None, ge=1970, le=2199, description="required but for an access copy")
    subject: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_\-]{1,80}$", description="the person, for an access copy only"
    )
    lang: Literal["zh", "en"] = "zh"
    format: Literal["md", "html", "pdf"] = "pdf"
    jurisdiction: str = Field(default="CN", pattern=r"^[A-Z]{2,3}$")

    @model_validator(mode="after")
    def _year_or_subject(self) -> ReportRequest:
        if self.kind == "access":
            if self.subject is None or self.year is not None:
                raise ValueError("an access copy names the subject and no year")
        elif self.year is None or self.subject is not None:
            raise ValueError(f"a {self.kind} report names the year and no subject")
        return self


OfficerOrSubject = Annotated[Principal, Depends(require(Role.OFFICER, Role.SUBJECT))]


@router.post("", summary="Write a report (annual, outbound, inventory, risk, self-assessment, access copy)")
async def write_report(request: Request, principal: OfficerOrSubject, body: ReportRequest) -> Response:
    if principal.role is Role.SUBJECT and body.kind != "access":
        raise ForbiddenError("a subject may ask for their own access copy only (kind: access)")
    if body.kind == "access":
        principal.require_subject(body.subject or "")
    service = ReportService(request.app.state.runtime)
    with tempfile.TemporaryDirectory(prefix="onshore-report-") as folder:
        # Markdown's charts are separate files; through the API a report is one file, so md comes as written
        written = await run_in_threadpool(
            lambda: service.generate(
                body.kind, body.year, body.lang, body.format, Path(folder), jurisdiction=body.jurisdiction,
                subject=body.subject, actor_role=principal.role.value,
            )
        )  # fmt: skip
        content = written.path.read_bytes()
    headers = {
        "Content-Disposition": f'attachment; filename="{written.path.name}"',
        "X-Onshore-Checkpoints": ";".join(f"{c['region']}@{c['size']}" for c in written.checkpoints),
    }
    return Response(content, media_type=MEDIA[body.format], headers=headers)
