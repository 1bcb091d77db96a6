"""The officer's dashboard and the auditor's view: server-rendered pages over the same services as the API.

- ``session``: login with a role-bound API token held in an HttpOnly, SameSite=Strict cookie; CSRF tokens;
  the page guards (officer pages: officer role; the auditor's view: auditor role; anyone else 403);
- ``render``: the Jinja2 environment, the language (zh/en) and the error pages a browser sees;
- ``views``: the numbers each page shows, read through the runtime's services (no SQL here);
- ``officer`` and ``audit``: the routes.

Every asset (CSS, JS) is served from the package under ``/desk/static``; nothing comes from the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from onshore.dashboard.audit import router as audit_router
from onshore.dashboard.officer import router as officer_router
from onshore.dashboard.render import STATIC_PATH, browser_error
from onshore.dashboard.session import router as session_router

__all__ = ["STATIC_PATH", "add_dashboard", "browser_error"]


def add_dashboard(app: FastAPI) -> None:
    """Serve the dashboard under ``/desk`` (pages, login, static assets)."""
    app.mount(STATIC_PATH, StaticFiles(directory=Path(__file__).parent / "static"), name="desk-static")
    app.include_router(session_router)
    app.include_router(officer_router)
    app.include_router(audit_router)
