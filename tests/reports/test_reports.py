"""The annual report and the outbound supplement, every figure checked against what the test itself did; a report
verifies against its ledger checkpoint and fails, naming the figure, once a figure is edited."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore.cli import app
from onshore.reports.verify import report_text, stated_figures, verify_report
from tests.conftest import Workspace, auth
from tests.reports.known import write


@pytest.mark.parametrize("kind", ["annual", "outbound"])
def test_every_figure_of_the_report_is_what_the_test_did(
    workspace: Workspace, activity: dict[str, int], kind: str
) -> None:
    path = write(workspace, kind, "en", "md")
    stated = stated_figures(report_text(path))
    assert stated, "the report states its figures"
    for key, value in stated:
        assert key in activity, f"figure {key} is not computed by the test"
        assert value == activity[key], (key, value, activity[key])
    keys = {k for k, _ in stated}
    # the annual report states every figure but the outbound ones, which the supplement states (Art. 15)
    expected = {k for k in activity if k.startswith("outbound.") == (kind == "outbound")}
    if kind == "outbound":
        expected.add("complaints.about_transfer")
    assert expected == keys, expected ^ keys
    text = path.read_text(encoding="utf-8")
    if kind == "annual":
        assert "[U]" in text or "［U］" in text, "unconfirmed items are shown as such"
        assert "a14.5" in text and "diagnostics file sent to the wrong workshop" in text
    else:
        assert "privacy@acme.example" in text and "Frankfurt data centre" in text
        assert "cn.out.basis-scope" in text, "the denial's reason is stated"
    assert verify_report(workspace.runtime, path).ok


def test_pdf_in_both_languages_verifies_and_an_edited_figure_fails(
    workspace: Workspace, activity: dict[str, int]
) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils missing: run `make system-deps`")
    for lang in ("zh", "en"):
        pdf = write(workspace, "annual", lang, "pdf")
        assert pdf.read_bytes().startswith(b"%PDF")
        text = report_text(pdf)
        if lang == "zh":
            assert "汽车数据安全管理情况年度报告" in text, "Chinese glyphs are in the PDF"
        verdict = verify_report(workspace.runtime, pdf)
        assert verdict.ok, verdict.problems
        assert verdict.figures_checked >= 30
    md = write(workspace, "annual", "zh", "md")
    text = md.read_text(encoding="utf-8")
    edited = text.replace(
        "| incidents.people_affected | 受影响人数 | 12 |", "| incidents.people_affected | 受影响人数 | 2 |", 1
    )
    assert edited != text
    md.write_text(edited, encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "verify", str(md), "-c", str(workspace.config)])
    assert result.exit_code == 1
    assert "incidents.people_affected" in result.output and "12" in result.output


def test_the_api_writes_a_report_for_the_officer_only(workspace: Workspace, client: TestClient) -> None:
    body = {"kind": "annual", "year": 2026, "lang": "en", "format": "html"}
    r = client.post("/v1/reports", json=body, headers=auth(workspace.token("officer")))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    assert "onshore-report/1 kind=annual year=2026" in r.text and "checkpoint region=cn" in r.text
    assert client.post("/v1/reports", json=body, headers=auth(workspace.token("analyst-cn"))).status_code == 403
    bad = client.post("/v1/reports", json={**body, "kind": "weekly"}, headers=auth(workspace.token("officer")))
    assert bad.status_code == 422 and "kind" in bad.text


def test_write_the_report_pages_for_the_docs(workspace: Workspace, activity: dict[str, int]) -> None:
    """`docs/report-pages.sh` runs this with REPORT_PAGES_DIR set: the PDFs of the known activity, as PNG pages."""
    import os
    import subprocess

    folder = os.environ.get("REPORT_PAGES_DIR")
    if not folder:
        pytest.skip("set REPORT_PAGES_DIR to a folder to write the docs' report pages")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for kind, lang in (("annual", "zh"), ("annual", "en"), ("outbound", "zh"), ("outbound", "en")):
        pdf = write(workspace, kind, lang, "pdf")
        shutil.copy(pdf, out / pdf.name)
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(out / pdf.stem)], check=True, timeout=120)
