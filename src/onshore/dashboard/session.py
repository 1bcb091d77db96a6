"""Who is at the desk: login with an API token, the session cookie, CSRF tokens and the page guards.

The browser sends the same role-bound API tokens as any client. The login form takes the token once and puts
it in an HttpOnly, SameSite=Strict cookie scoped to ``/desk`` (Secure when served over HTTPS): page scripts
cannot read it and other sites cannot make the browser send it. A page's form carries a CSRF token, an HMAC
of the session's token under a key of this process, checked on every POST that came with the cookie (a
request with an ``Authorization`` header carries no ambient credential and needs none).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from onshore.auth import Principal, Role
from onshore.dashboard.render import page
from onshore.errors import AuthError, ForbiddenError, InputError, PayloadTooLargeError
from onshore.web.auth import require

COOKIE = "onshore_desk"
MAX_FORM_BYTES = 64 * 1024
HOME = {Role.OFFICER: "/desk", Role.AUDITOR: "/desk/audit"}


async def _with_csrf(request: Request, principal: Principal) -> Principal:
    request.state.csrf = csrf_token(request, principal)
    return principal


async def _officer(request: Request, principal: Annotated[Principal, Depends(require(Role.OFFICER, cookie=COOKIE))]):
    return await _with_csrf(request, principal)


async def _auditor(request: Request, principal: Annotated[Principal, Depends(require(Role.AUDITOR, cookie=COOKIE))]):
    return await _with_csrf(request, principal)


DeskOfficer = Annotated[Principal, Depends(_officer)]
DeskAuditor = Annotated[Principal, Depends(_auditor)]
router = APIRouter(prefix="/desk", tags=["dashboard"])


def _key(request: Request) -> bytes:
    key = getattr(request.app.state, "desk_csrf_key", None)
    if key is None:
        key = request.app.state.desk_csrf_key = secrets.token_bytes(32)
    return bytes(key)


def csrf_token(request: Request, principal: Principal) -> str:
    """The CSRF token of this session: bound to the token in the cookie, so it dies with the session."""
    held = request.cookies.get(COOKIE, "") if getattr(request.state, "by_cookie", False) else principal.name
    return hmac.new(_key(request), b"desk-csrf\0" + held.encode(), hashlib.sha256).hexdigest()


async def read_form(request: Request) -> dict[str, str]:
    """The request's URL-encoded form, one value per field (the last), at most ``MAX_FORM_BYTES``.

    Raises:
        PayloadTooLargeError (413); InputError (400): not UTF-8.
    """
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLargeError(f"a dashboard form is at most {MAX_FORM_BYTES // 1024} KiB")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the form is not URL-encoded UTF-8 ({exc.__class__.__name__})") from None
    return {k: v[-1] for k, v in fields.items()}


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a POST that came with the session cookie but without this session's CSRF token.

    Raises:
        ForbiddenError (403): the token is missing or another session's.
    """
    if not getattr(request.state, "by_cookie", False):
        return
    if not sent or not hmac.compare_digest(sent, getattr(request.state, "csrf", "")):
        raise ForbiddenError("the form's CSRF token is missing or stale: reload the page and submit again")


@router.get("/login", response_class=HTMLResponse, summary="The dashboard's login page")
def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", error=None)


@router.post("/login", summary="Log in with an officer or auditor token (sets the session cookie)")
async def login(request: Request) -> Response:
    token = (await read_form(request)).get("token", "").strip()
    auth = request.app.state.auth
    try:
        principal: Principal = await run_in_threadpool(auth.authenticate, token)
    except AuthError:  # the form's input is wrong: 400 (a 401 would ask for credentials this route does not take)
        return page(request, "login.html", status=400, error="login_unknown")
    if principal.role not in HOME:
        return page(request, "login.html", status=403, error="login_role")
    response = RedirectResponse(HOME[principal.role], status_code=303)
    response.set_cookie(
        COOKIE, token, path="/desk", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@router.post("/logout", summary="Log out (clears the session cookie)")
def logout() -> Response:
    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(COOKIE, path="/desk", httponly=True, samesite="strict")
    return response
