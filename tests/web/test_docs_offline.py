"""/docs is Swagger UI from the package: every asset it names is served by onshore itself, none from the internet."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_and_its_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    assets = [u for u in urls if u.startswith("/static/")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in assets)
    for url in assets:
        r = client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 500, url
    assert client.get("/openapi.json").json()["info"]["title"] == "onshore"
