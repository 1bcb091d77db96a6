"""The API documentation pages, served from the installed package: nothing is fetched from the internet.

FastAPI's default `/docs` loads Swagger UI from a public CDN, which an in-country or air-gapped deployment cannot
reach. Here the Swagger UI files come from the `swagger-ui-bundle` wheel, mounted under ``/static/swagger-ui``;
`/docs` and `/openapi.json` hold no data, only the API's shape, and need no token.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/static/swagger-ui"


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the package (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
