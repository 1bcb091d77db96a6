"""Pages: the Jinja2 environment, the reader's language, and the error pages a browser is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from onshore.dashboard.i18n import LANGS, words
from onshore.errors import OnshoreError

STATIC_PATH = "/desk/static"
LANG_COOKIE = "onshore_lang"
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["num"] = lambda n: "-" if n is None else f"{n:,}"


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, else the language cookie, else the browser's preference (zh or en)."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LANGS:
        return asked
    return "zh" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` in the reader's language; a ``?lang=`` choice is remembered in a cookie."""
    lang = lang_of(request)
    principal = context.pop("principal", None)
    html = _env.get_template(template).render(
        t=words(lang),
        lang=lang,
        static=STATIC_PATH,
        path=request.url.path,
        query=request.url.query,
        role=None if principal is None else principal.role.value,
        csrf=getattr(request.state, "csrf", ""),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/desk", samesite="strict")
    return response


def fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    """A piece of a page (a verification verdict) that the page's script puts in place."""
    return HTMLResponse(_env.get_template(template).render(t=words(lang_of(request)), **context))


def browser_error(request: Request, exc: OnshoreError) -> Response | None:
    """What a browser on a dashboard page sees for ``exc``: the login page for 401, an error page otherwise.

    None for anything else (an API client, or a dashboard request that does not accept HTML): it gets the one
    JSON error shape like every route.
    """
    if not request.url.path.startswith("/desk") or "text/html" not in request.headers.get("accept", ""):
        return None
    if exc.status == 401:
        return RedirectResponse("/desk/login", status_code=303)
    return page(request, "error.html", status=exc.status, status_code=exc.status, code=exc.code, message=exc.message)
