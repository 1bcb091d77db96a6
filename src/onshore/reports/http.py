"""The reports API (officer): ``POST /v1/reports`` writes a report and answers it as a file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from onshore.reports.service import ReportService
from onshore.web.auth import Officer

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MEDIA = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["annual", "outbound", "inventory"]
    year: int = Field(ge=1970, le=2199)
    lang: Literal["zh", "en"] = "zh"
    format: Literal["md", "html", "pdf"] = "pdf"
    jurisdiction: str = Field(default="CN", pattern=r"^[A-Z]{2,3}$")


@router.post("", summary="Write a report (annual, outbound supplement, inventory) from the ledger and registers")
async def write_report(request: Request, _principal: Officer, body: ReportRequest) -> Response:
    service = ReportService(request.app.state.runtime)
    with tempfile.TemporaryDirectory(prefix="onshore-report-") as folder:
        # Markdown's charts are separate files; through the API a report is one file, so md comes as written
        written = await run_in_threadpool(
            service.generate, body.kind, body.year, body.lang, body.format, Path(folder), jurisdiction=body.jurisdiction
        )
        content = written.path.read_bytes()
    headers = {
        "Content-Disposition": f'attachment; filename="{written.path.name}"',
        "X-Onshore-Checkpoints": ";".join(f"{c['region']}@{c['size']}" for c in written.checkpoints),
    }
    return Response(content, media_type=MEDIA[body.format], headers=headers)
