"""The risk assessment (Art. 13) and the self-assessment draft (2022 Measures Art. 5): every figure checked against
what the test did, each verifying against its checkpoint and failing, naming the figure, once one is edited."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from onshore import clock
from onshore.reports.verify import report_text, stated_figures, verify_report
from tests.border.helpers import request
from tests.conftest import Workspace, auth, record
from tests.reports.known import NOW, ms, write

CN_VIN_4 = "LSVM0TEST00000004"
LAST_YEAR = dt.datetime(2025, 12, 15, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def more(workspace: Workspace, client: TestClient, activity: dict[str, int]) -> dict[str, int]:
    """The known activity, plus an open incident this year and a release abroad in December of the year before."""
    rt = workspace.runtime
    with clock.frozen(ms(NOW)):
        rt.registers.add(
            "incident",
            "cn",
            {"title": "a lost diagnostics laptop", "occurred_on": "2026-06-01", "categories": ["personal"],
             "people_affected": 4},
            actor_role="officer",
        )  # fmt: skip
    with clock.frozen(ms(LAST_YEAR)):
        token = rt.vehicles.add(CN_VIN_4, "CN").token
        rt.consents.grant(rt.vehicles.owner_of(CN_VIN_4, "CN"), "navigation", "ordinary", "90d", actor_role="officer")
        body = [record(f"d{i}", "MilesToArrival", i, ms(LAST_YEAR) - 60_000) for i in range(2)]
        assert client.post("/v1/ingest", json=body, headers=auth(token)).json()["accepted"] == 2
        since = (LAST_YEAR - dt.timedelta(days=1)).isoformat()
        old = rt.border.run(
            request("cn", LAST_YEAR, since=since, signals=["MilesToArrival"]), None, actor_role="officer"
        )
        assert old.released and old.manifest is not None
    old_records = old.manifest["counts"]["records"]
    old_people = sum(c.data_class.people for c in old.decision.classes if c.decision != "deny")
    assert (old_records, old_people) == (2, 1)
    return {
        **activity,
        "incidents.count": 2,
        "risk.incidents_open": 1,
        "incidents.people_affected": 16,
        "risk.complaints_open": 0,
        "outbound.since_previous_year.transfers_released": activity["outbound.transfers_released"] + 1,
        "outbound.since_previous_year.records": activity["outbound.records"] + old_records,
        "outbound.since_previous_year.people_pi": activity["outbound.people_pi"] + old_people,
        "outbound.since_previous_year.people_sensitive": activity["outbound.people_sensitive"],
    }


RISK_KEYS = {
    "collect.received", "store.records_stored", "frames.received", "delete.records_retention", "consent.granted",
    "consent.withdrawn", "collect.dropped_no_consent", "delete.records_erasure", "rights.requests",
    "rights.handled_late", "provision.entries", "provision.people", "provision.records",
    "outbound.transfers_released", "outbound.records", "outbound.denials", "incidents.count", "risk.incidents_open",
    "incidents.people_affected", "risk.complaints_open", "rights.pending_overdue",
}  # fmt: skip
SELF_KEYS = {
    "outbound.people_pi", "outbound.people_sensitive", "outbound.since_previous_year.people_pi",
    "outbound.since_previous_year.people_sensitive", "outbound.imported_rows", "outbound.transfers_released",
    "outbound.records", "outbound.since_previous_year.records", "outbound.since_previous_year.transfers_released",
    "outbound.denials", "outbound.records_refused", "incidents.count", "complaints.about_transfer",
    "rights.requests", "rights.pending_overdue",
}  # fmt: skip


@pytest.mark.parametrize(("kind", "keys"), [("risk", RISK_KEYS), ("selfassessment", SELF_KEYS)])
def test_every_figure_of_the_assessment_is_what_the_test_did(
    workspace: Workspace, more: dict[str, int], kind: str, keys: set[str]
) -> None:
    path = write(workspace, kind, "en", "md")
    stated = stated_figures(report_text(path))
    per_basis = {k for k, _ in stated if k.startswith("outbound.basis.")}
    assert {k for k, _ in stated} - per_basis == keys
    for key, value in stated:
        assert value == more[key], (key, value, more[key])
    text = path.read_text(encoding="utf-8")
    assert "checkpoint region=cn size=" in text and "-----BEGIN CHECKPOINT cn-----" in text
    if kind == "risk":
        assert "a13.5" in text and "security incidents still open" in text, "the open incident is a finding"
        assert "finish the handling and close them" in text, "with its countermeasure"
        assert "from the stores (descriptive, not verified)" in text
    else:
        assert "Declare by: 2026-09-10" in text.replace("**", ""), "within 3 months of the assessment (Art. 5)"
        assert "Frankfurt data centre" in text and "cn.out.basis-scope" in text
        assert (path.parent / f"{path.stem}-thresholds.png").stat().st_size > 1000
    verdict = verify_report(workspace.runtime, path)
    assert verdict.ok, verdict.problems


@pytest.mark.parametrize(("kind", "row"), [
    ("risk", "| risk.incidents_open | security incidents not yet closed | 1 |"),
    ("selfassessment",
     "| outbound.since_previous_year.records | records abroad since 1 January of the previous year | 7 |"),
])  # fmt: skip
def test_an_edited_assessment_figure_fails_verification(
    workspace: Workspace, more: dict[str, int], kind: str, row: str
) -> None:
    path = write(workspace, kind, "en", "md")
    text = path.read_text(encoding="utf-8")
    assert row in text, row
    path.write_text(text.replace(row, row.replace(row.split("|")[3], " 9 "), 1), encoding="utf-8")
    verdict = verify_report(workspace.runtime, path)
    assert not verdict.ok
    key = row.split("|")[1].strip()
    assert [d["figure"] for d in verdict.differences] == [key]


def test_the_assessments_render_in_chinese_as_pdf(workspace: Workspace, more: dict[str, int]) -> None:
    import shutil

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils missing: run `make system-deps`")
    for kind, title in (("risk", "重要数据处理活动风险评估报告"), ("selfassessment", "数据出境风险自评估报告")):
        pdf = write(workspace, kind, "zh", "pdf")
        assert title in report_text(pdf), "Chinese glyphs are in the PDF"
        assert verify_report(workspace.runtime, pdf).ok
