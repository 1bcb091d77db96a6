"""The dashboard in a real browser: Playwright driving the system Chromium (Debian's ``chromium``, installed by
`make system-deps`; never a downloaded browser) against a real server on loopback.

Logs in as the officer, sees the numbers the API reports, approves a basis, watches a denied export appear with
its reasons, downloads a PDF report; then as the auditor verifies a bundle's manifest. With ``CI=true`` a
missing Chromium or Playwright fails the test, never skips it. With ``DESK_SCREENSHOTS=<folder>`` the main pages
are saved there as PNG (docs/dashboard.sh).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn

from onshore.web.app import create_app
from tests.conftest import auth
from tests.dashboard.conftest import Desk

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the dashboard's browser test needs {why} in CI (make system-deps; pip install -e '.[test]')")
    pytest.skip(f"{why} is not available")


@pytest.fixture
def server(desk: Desk) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(desk.workspace.runtime), host="127.0.0.1", port=port, log_level="warning")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package")
    if not Path(CHROMIUM).exists():
        _missing(CHROMIUM)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: object, name: str) -> None:
    folder = os.environ.get("DESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _login(page: object, base: str, token: str) -> None:
    page.goto(f"{base}/desk/login")  # type: ignore[attr-defined]
    page.fill("#token", token)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_officer_and_auditor_in_the_browser(desk: Desk, server: str, browser: object, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    officer = desk.workspace.token("officer")
    context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(20_000)
    _login(page, server, officer)
    expect(page).to_have_url(f"{server}/desk")
    stats = httpx.get(f"{server}/v1/stats", headers=auth(officer)).json()["regions"]["cn"]
    expect(page.locator('#held tr[data-region="cn"] td[data-k="records"]')).to_have_text(f"{stats['records']:,}")
    for category, n in stats["by_category"].items():
        expect(page.locator(f'#held tr[data-region="cn"] td[data-k="{category}"]')).to_have_text(f"{n:,}")
    _shot(page, "overview-en")
    page.goto(f"{server}/desk?lang=zh")
    expect(page.locator("h2").first).to_have_text("存储的数据（按区域和类别）")
    _shot(page, "overview-zh")
    page.goto(f"{server}/desk?lang=en")

    page.goto(f"{server}/desk/bases")
    draft = page.locator('tr[data-basis="cn-sc-draft"]')
    draft.locator("input[name=reference]").fill("SC-2026-7")
    _shot(page, "bases")
    draft.locator("button[type=submit]").click()
    expect(draft.locator(".pill")).to_have_text("approved")
    expect(draft.locator("form.approve")).to_have_count(0)
    assert httpx.get(f"{server}/v1/border/bases/cn-sc-draft", headers=auth(officer)).json()["status"] == "approved"

    denied = httpx.post(
        f"{server}/v1/border/exports",
        headers=auth(officer),
        json={"region": "cn", "destination": "JP", "recipient": "acme-gmbh", "purpose": "diagnostics",
              "since": "2026-06-08T00:00:00+00:00", "until": "2026-06-10T04:00:00+00:00", "fleet": "all",
              "signals": ["Location"]},
    )  # fmt: skip
    assert denied.status_code == 403, denied.text
    transfer = denied.json()["error"]["details"]["transfer_id"]
    page.goto(f"{server}/desk/border")
    page.select_option("select[name=status]", "denied")
    page.click("form.filters button[type=submit]")
    row = page.locator(f'tr[data-transfer="{transfer}"]')
    expect(row).to_be_visible()
    expect(row.locator(".reasons li").first).to_contain_text("(")
    assert row.locator(".reasons li").count() >= 1
    _shot(page, "border")

    page.goto(f"{server}/desk/registers")
    _shot(page, "registers")
    page.goto(f"{server}/desk/reports")
    page.select_option("select[name=format]", "pdf")
    with page.expect_download() as download_info:
        page.click("#report-form button[type=submit]")
    saved = tmp_path / "report.pdf"
    download_info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")

    page.click("button.link")  # log out
    expect(page).to_have_url(f"{server}/desk/login")
    _login(page, server, desk.workspace.token("auditor"))
    expect(page).to_have_url(f"{server}/desk/audit")
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(orjson.dumps(desk.manifest))
    page.set_input_files("#bundle-file", str(manifest))
    page.click('form[data-target="bundle-verdict"] button[type=submit]')
    expect(page.locator('#bundle-verdict .verdict[data-ok="true"]')).to_be_visible()
    edited = dict(desk.manifest, destination="US")
    manifest.write_bytes(orjson.dumps(edited))
    page.set_input_files("#bundle-file", str(manifest))
    page.click('form[data-target="bundle-verdict"] button[type=submit]')
    expect(page.locator('#bundle-verdict .verdict[data-ok="false"]')).to_be_visible()
    manifest.write_bytes(orjson.dumps(desk.manifest))
    page.set_input_files("#bundle-file", str(manifest))
    page.click('form[data-target="bundle-verdict"] button[type=submit]')
    expect(page.locator('#bundle-verdict .verdict[data-ok="true"]')).to_be_visible()
    _shot(page, "audit")
    page.goto(f"{server}/desk")  # the auditor may not see the officer's pages
    expect(page.locator("h1")).to_contain_text("403")
    context.close()
