"""The annual report and the outbound supplement, every figure checked against what the test itself did; a report
verifies against its ledger checkpoint and fails, naming the figure, once a figure is edited."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore import clock
from onshore.cli import app
from onshore.reports.service import ReportService
from onshore.reports.verify import report_text, stated_figures, verify_report
from tests.border.helpers import basis, request
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, record

CN_VIN_3 = "LSVM0TEST00000003"
NOW = dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC)  # a Wednesday


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def activity(workspace: Workspace, client: TestClient) -> dict[str, int]:
    """Known activity in 2026; returns every figure as the test computes it from what it did."""
    rt = workspace.runtime
    officer = auth(workspace.token("officer"))
    with clock.frozen(_ms(NOW)):
        ts = _ms(NOW) - 60_000
        tokens = {}
        for vin in (CN_VIN, CN_VIN_2, CN_VIN_3):
            tokens[vin] = rt.vehicles.add(vin, "CN").token
        owner_a, owner_b, owner_c = (rt.vehicles.owner_of(v, "CN") for v in (CN_VIN, CN_VIN_2, CN_VIN_3))
        for owner in (owner_a, owner_c):  # B gives no consent
            rt.consents.grant(owner, "navigation", "separate", "90d", actor_role="officer")
        batches = {
            CN_VIN: [record(f"a{i}", "MilesToArrival", 10 + i, ts) for i in range(3)]
            + [record("aloc", "Location", {"latitude": 31.23, "longitude": 121.47}, ts)],
            CN_VIN_2: [record(f"b{i}", "Location", {"latitude": 31.2, "longitude": 121.4}, ts) for i in range(2)],
            CN_VIN_3: [record("c0", "MilesToArrival", 5, ts)],
        }
        accepted = dropped = 0
        for vin, body in batches.items():
            r = client.post("/v1/ingest", json=body, headers=auth(tokens[vin]))
            assert r.status_code == 200, r.text
            accepted += r.json()["accepted"]
            dropped += r.json()["dropped_no_consent"]
        assert (accepted, dropped) == (5, 2)

        # two transfers released (a volume exemption, then a security assessment) and one denial
        abroad = {"storage_abroad": "Frankfurt data centre", "period_abroad": "2 years", "destinations": ["DE"]}
        basis(rt, "cn", "cn-sa-1", "security_assessment", approved_on="2026-01-05",
              recipient_contact="privacy@acme.example", **abroad)  # fmt: skip
        since = NOW - dt.timedelta(days=2)
        t1 = rt.border.run(
            request("cn", NOW, since=since.isoformat(), signals=["MilesToArrival"]), None, actor_role="officer"
        )
        t2 = rt.border.run(
            request("cn", NOW, since=since.isoformat(), signals=["Location"]), None, actor_role="officer"
        )
        t3 = rt.border.run(
            request("cn", NOW, since=since.isoformat(), signals=["Location"], destination="US"),
            None,
            actor_role="officer",
        )
        assert t1.released and t2.released and not t3.released
        released = [t1, t2]
        out_records = sum(t.manifest["counts"]["records"] for t in released if t.manifest)
        t1_people = sum(c.data_class.people for c in t1.decision.classes if c.decision != "deny")
        t1_records = t1.manifest["counts"]["records"] if t1.manifest else 0
        assert (t1_people, t1_records) == (2, 4), "A's three trip records and C's one"
        refused = sum(c.data_class.records for c in t3.decision.classes if c.decision == "deny")

        # rights requests: an erasure within its deadline, one past it, one pending overdue, one pending access
        reg = rt.registers
        within = reg.add(
            "rights_request",
            "cn",
            {"kind": "erasure", "received_on": "2026-06-08", "subject": owner_b},
            actor_role="officer",
        )
        late = reg.add(
            "rights_request",
            "cn",
            {"kind": "erasure", "received_on": "2026-05-04", "subject": owner_c},
            actor_role="officer",
        )
        reg.add("rights_request", "cn", {"kind": "erasure", "received_on": "2026-05-01"}, actor_role="officer")
        reg.add("rights_request", "cn", {"kind": "access", "received_on": "2026-06-09"}, actor_role="officer")
        handled = [reg.handle(within.id, actor_role="officer"), reg.handle(late.id, actor_role="officer")]
        assert [h.to_dict()["within_deadline"] for h in handled] == [True, False]

        # an incident this year, one last year (not counted), a complaint about a transfer, a domestic provision
        r = client.post("/v1/registers/incident", headers=officer, json={
            "title": "diagnostics file sent to the wrong workshop", "occurred_on": "2026-03-02",
            "categories": ["personal"], "people_affected": 12, "handling": "file deleted by the recipient",
            "reported_to_authority": True, "closed_on": "2026-03-20"})  # fmt: skip
        assert r.status_code == 201, r.text
        reg.add(
            "incident",
            "cn",
            {"title": "old", "occurred_on": "2025-11-01", "categories": ["general"], "people_affected": 3},
            actor_role="officer",
        )
        complaint = {"topic": "asked why data went to Germany", "received_on": "2026-04-01", "about_transfer": True,
                     "handling": "explained the basis", "closed_on": "2026-04-03"}  # fmt: skip
        reg.add("complaint", "cn", complaint, actor_role="officer")
        provision = {"recipient": "Example Insurance Co.", "purpose": "navigation", "categories": ["personal"],
                     "basis": "contract", "people": 5, "records": 50, "started_on": "2026-01-10"}  # fmt: skip
        reg.add("provision", "cn", provision, actor_role="officer")
    return {
        "collect.received": 7,
        "collect.dropped_no_consent": dropped,
        "store.records_stored": accepted,
        "frames.received": 0,
        "consent.granted": 2,
        "consent.withdrawn": 0,
        "delete.records_retention": 0,
        "delete.records_erasure": 1,  # C's one record; B had none stored
        "provision.entries": 1,
        "provision.people": 5,
        "provision.records": 50,
        "incidents.count": 1,
        "incidents.closed": 1,
        "incidents.people_affected": 12,
        "incidents.reported": 1,
        "complaints.count": 1,
        "complaints.closed": 1,
        "complaints.about_transfer": 1,
        "rights.requests": 4,
        "rights.erasure_requests": 3,
        "rights.handled": 2,
        "rights.handled_within_deadline": 1,
        "rights.handled_late": 1,
        "rights.pending": 2,
        "rights.pending_overdue": 1,
        "outbound.transfers_released": len(released),
        "outbound.records": out_records,
        "outbound.people_pi": t1_people,  # A's and C's trip data, under the volume exemption
        "outbound.people_sensitive": 1,  # A's position, under cn-sa-1
        "outbound.denials": 1,
        "outbound.records_refused": refused,
        "outbound.imported_rows": 0,
        "outbound.basis.cn-sa-1.records": 1,
        "outbound.basis.cn-sa-1.people_sensitive": 1,
        "outbound.basis.cn-sa-1.people_pi": 0,
        "outbound.basis.cn-sa-1.releases": 1,
        "outbound.basis.none.records": t1_records,
        "outbound.basis.none.people_pi": t1_people,
        "outbound.basis.none.people_sensitive": 0,
        "outbound.basis.none.releases": 1,
    }


def _write(ws: Workspace, kind: str, lang: str, fmt: str) -> Path:
    with clock.frozen(_ms(NOW)):
        return ReportService(ws.runtime).generate(kind, 2026, lang, fmt, ws.folder / "reports").path


@pytest.mark.parametrize("kind", ["annual", "outbound"])
def test_every_figure_of_the_report_is_what_the_test_did(
    workspace: Workspace, activity: dict[str, int], kind: str
) -> None:
    path = _write(workspace, kind, "en", "md")
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
        pdf = _write(workspace, "annual", lang, "pdf")
        assert pdf.read_bytes().startswith(b"%PDF")
        text = report_text(pdf)
        if lang == "zh":
            assert "汽车数据安全管理情况年度报告" in text, "Chinese glyphs are in the PDF"
        verdict = verify_report(workspace.runtime, pdf)
        assert verdict.ok, verdict.problems
        assert verdict.figures_checked >= 30
    md = _write(workspace, "annual", "zh", "md")
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
        pdf = _write(workspace, kind, lang, "pdf")
        shutil.copy(pdf, out / pdf.name)
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(out / pdf.stem)], check=True, timeout=120)
