"""Every dashboard page over HTTP: the numbers the API reports, the one write (approve a basis) CSRF-checked,
the auditor's verifications, and 403 for every role a page is not for (the route x role matrix checks all)."""

from __future__ import annotations

import copy
import datetime as dt
import re

import orjson
import pytest
from markupsafe import escape

from onshore.border.dates import working_days_between
from onshore.dashboard.session import COOKIE
from tests.conftest import auth
from tests.dashboard.conftest import NOW, Desk

HTML = {"Accept": "text/html"}


def _cell(html: str, row_attr: str, row_value: str, key: str) -> str:
    row = re.search(rf'<tr {row_attr}="{re.escape(row_value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row {row_attr}={row_value}"
    cell = re.search(rf'data-k="{re.escape(key)}">(.*?)</td>', row.group(1), re.S)
    assert cell, f"no cell {key} in row {row_value}"
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def _login(desk: Desk, name: str) -> str:
    r = desk.client.post("/desk/login", data={"token": desk.workspace.token(name)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/desk" in cookie
    return r.cookies[COOKIE]


def test_the_overview_shows_the_numbers_the_api_reports(desk: Desk) -> None:
    stats = desk.client.get("/v1/stats", headers=desk.officer()).json()["regions"]
    html = desk.client.get("/desk", headers=desk.officer()).text
    for region, s in stats.items():
        assert _cell(html, "data-region", region, "records") == f"{s['records']:,}"
        for category, n in s["by_category"].items():
            assert _cell(html, "data-region", region, category) == f"{n:,}"
    assert stats["cn"]["records"] == 5
    metrics = desk.client.get("/metrics", headers=desk.officer()).text
    dropped = re.search(r'onshore_records_dropped_total\{reason="no_consent",region="cn"\} (\d+)', metrics)
    assert dropped and int(float(dropped.group(1))) == 2
    assert re.search(r'<tr data-reason="no_consent"><td>[^<]*<code>no_consent</code></td><td class="n">2</td>', html)
    size = desk.client.get("/v1/ledger/cn/checkpoint", headers=desk.officer()).json()["tree_size"]
    row = re.search(r'<table id="checkpoints">.*?<tr data-region="cn"><td>cn</td><td class="n">([\d,]+)<', html, re.S)
    assert row and row.group(1) == f"{size:,}"
    assert 'id="residency">✔' in html


def test_the_border_page_shows_the_denial_with_its_reasons_and_filters(desk: Desk) -> None:
    api = desk.client.get("/v1/border/exports?region=cn&status=denied", headers=desk.officer()).json()["transfers"]
    assert [t["transfer_id"] for t in api] == [desk.denied]
    html = desk.client.get("/desk/border?region=cn&status=denied", headers=desk.officer()).text
    assert desk.denied in html and desk.released not in html
    for reason in api[0]["denied_reasons"]:
        assert str(escape(reason)) in html
    both = desk.client.get("/desk/border?region=cn", headers=desk.officer()).text
    assert desk.denied in both and desk.released in both
    released_only = desk.client.get("/desk/border?destination=DE", headers=desk.officer()).text
    assert desk.released in released_only and desk.denied not in released_only
    bad = desk.client.get("/desk/border?since=yesterday", headers={**desk.officer(), **HTML})
    assert bad.status_code == 400 and "since" in bad.text


def test_the_bases_page_shows_validity_usage_and_approves_a_draft_with_its_csrf_token(desk: Desk) -> None:
    api = {b["id"]: b for b in desk.client.get("/v1/border/bases", headers=desk.officer()).json()["bases"]}
    html = desk.client.get("/desk/bases", headers=desk.officer()).text
    assert _cell(html, "data-basis", "cn-sa-1", "days") == str(api["cn-sa-1"]["working_days_to_expiry"])
    assert api["cn-sc-draft"]["status"] == "draft" and 'action="/desk/bases/cn-sc-draft/approve"' in html
    assert "cn.out.2022" not in html and 'class="card thresholds" data-region="cn"' in html  # rules in force only
    desk.client.cookies.set(COOKIE, _login(desk, "officer"), path="/desk")
    page = desk.client.get("/desk/bases")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert token
    no_token = desk.client.post("/desk/bases/cn-sc-draft/approve", data={"reference": "x"}, headers=HTML)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    forged = desk.client.post("/desk/bases/cn-sc-draft/approve", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    done = desk.client.post(
        "/desk/bases/cn-sc-draft/approve",
        data={"csrf": token.group(1), "reference": "SC-2026-7"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    approved = desk.client.get("/v1/border/bases/cn-sc-draft", headers=desk.officer()).json()
    assert approved["status"] == "approved" and approved["approved_on"] == "2026-06-10"
    assert 'action="/desk/bases/cn-sc-draft/approve"' not in desk.client.get("/desk/bases").text


def test_the_registers_page_counts_working_days_down(desk: Desk) -> None:
    entries = desk.client.get("/v1/registers/rights_request", headers=desk.officer()).json()["entries"]
    html = desk.client.get("/desk/registers", headers=desk.officer()).text
    pending, old = sorted(entries, key=lambda e: e["received_on"], reverse=True)
    left = working_days_between(NOW.date(), dt.date.fromisoformat(pending["deadline"]))
    assert left > 0 and _cell(html, "data-entry", str(pending["id"]), "countdown") == str(left)
    assert _cell(html, "data-entry", str(old["id"]), "countdown") == "overdue"
    assert "diagnostics file sent to the wrong workshop" in html and "asked why data went to Germany" in html


def test_a_pdf_report_downloads_from_the_reports_page(desk: Desk) -> None:
    desk.client.cookies.set(COOKIE, _login(desk, "officer"), path="/desk")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', desk.client.get("/desk/reports").text)
    assert token
    form = {
        "csrf": token.group(1),
        "kind": "annual",
        "year": "2026",
        "lang": "zh",
        "format": "pdf",
        "jurisdiction": "CN",
    }
    r = desk.client.post("/desk/reports", data=form)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert "attachment" in r.headers["content-disposition"]


def test_the_auditor_sees_checkpoints_events_and_a_verified_inclusion_proof(desk: Desk) -> None:
    size = desk.client.get("/v1/ledger/cn/checkpoint", headers=desk.auditor()).json()["tree_size"]
    html = desk.client.get("/desk/audit?region=cn", headers=desk.auditor()).text
    assert f"[{max(0, size - 100)}, {size}) / {size:,}" in html
    assert 'data-kind="provide_abroad"' in html
    only = desk.client.get("/desk/audit?region=cn&kind=provide_abroad", headers=desk.auditor()).text
    assert set(re.findall(r'data-kind="([a-z_]+)"', only)) == {"provide_abroad"}
    proof = desk.client.get(f"/desk/audit/proof?region=cn&index=1&size={size}", headers=desk.auditor()).text
    assert 'id="proof-verdict">✔' in proof


def _upload(desk: Desk, url: str, body: bytes) -> str:
    r = desk.client.post(url, content=body, headers=desk.auditor())
    assert r.status_code == 200, r.text[:300]
    return r.text


def test_the_auditor_verifies_a_manifest_and_an_edited_one_fails(desk: Desk) -> None:
    good = _upload(desk, "/desk/audit/verify/bundle?region=cn", orjson.dumps(desk.manifest))
    assert 'data-ok="true"' in good and desk.released in good
    edited = copy.deepcopy(desk.manifest)
    edited["purpose"] = "marketing"
    bad = _upload(desk, "/desk/audit/verify/bundle?region=cn", orjson.dumps(edited))
    assert 'data-ok="false"' in bad and "terms were changed" in bad
    r = desk.client.post("/desk/audit/verify/bundle?region=cn", content=b"not json", headers=desk.auditor())
    assert r.status_code == 400


def test_the_auditor_verifies_a_report(desk: Desk) -> None:
    report = desk.client.post(
        "/v1/reports", json={"kind": "annual", "year": 2026, "lang": "en", "format": "md"}, headers=desk.officer()
    ).content
    assert 'data-ok="true"' in _upload(desk, "/desk/audit/verify/report", report)
    edited = re.sub(rb"(store\.records_stored[^\n]*\| )(\d+)", rb"\g<1>999", report, count=1)
    assert edited != report
    assert 'data-ok="false"' in _upload(desk, "/desk/audit/verify/report", edited)


def test_a_browser_post_with_the_cookie_needs_the_csrf_token_even_for_a_verification(desk: Desk) -> None:
    desk.client.cookies.set(COOKIE, _login(desk, "auditor"), path="/desk")
    r = desk.client.post("/desk/audit/verify/bundle?region=cn", content=orjson.dumps(desk.manifest))
    assert r.status_code == 403


@pytest.mark.parametrize(
    "token, path",
    [("auditor", "/desk"), ("analyst-cn", "/desk/bases"), ("monitor", "/desk/registers"),
     ("officer", "/desk/audit"), ("analyst-cn", "/desk/audit"), ("gateway", "/desk/border")],
)  # fmt: skip
def test_other_roles_get_403(desk: Desk, token: str, path: str) -> None:
    r = desk.client.get(path, headers=auth(desk.workspace.token(token)))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    page = desk.client.get(path, headers={**auth(desk.workspace.token(token)), **HTML})
    assert page.status_code == 403 and "<html" in page.text


def test_login_refuses_unknown_tokens_and_roles_without_a_dashboard_and_a_browser_without_one_goes_to_login(
    desk: Desk,
) -> None:
    assert desk.client.post("/desk/login", data={"token": "ons_nope"}).status_code == 400
    assert desk.client.post("/desk/login", data={"token": desk.workspace.token("monitor")}).status_code == 403
    r = desk.client.get("/desk", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/desk/login"
    assert desk.client.get("/desk").status_code == 401  # an API client gets the JSON error


def test_pages_speak_chinese_and_english(desk: Desk) -> None:
    zh = desk.client.get("/desk?lang=zh", headers=desk.officer())
    assert "存储的数据" in zh.text and "onshore_lang=zh" in zh.headers["set-cookie"]
    assert "Data held, by region and category" in desk.client.get("/desk?lang=en", headers=desk.officer()).text
    assert (
        str(escape("Auditor's view")) in desk.client.get("/desk/audit", headers=desk.auditor()).text
    )  # the choice is kept
    desk.client.cookies.clear()
    assert "审计视图" in desk.client.get("/desk/audit", headers={**desk.auditor(), "Accept-Language": "zh-CN"}).text


def test_every_asset_comes_from_the_package(desk: Desk) -> None:
    for path in ("/desk", "/desk/border", "/desk/bases", "/desk/registers", "/desk/reports"):
        html = desk.client.get(path, headers=desk.officer()).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith(("/", "?", "javascript:")) for a in assets), (path, assets)
    for asset in ("desk.css", "desk.js"):
        assert desk.client.get(f"/desk/static/{asset}").status_code == 200
    css = desk.client.get("/desk/static/desk.css").text
    assert "url(" not in css and "@import" not in css
