"""The list of transfers abroad with the reasons of denials, and the import of earlier transfers per person and date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore import clock
from onshore.border.transfers import TransferFilter
from onshore.cli import app
from tests.border.helpers import Plant, plant, request, subject, utc
from tests.conftest import Workspace, auth

HEART = (Plant("Vehicle.Driver.HeartRate", 2),)  # sensitive personal information: needs a basis
TRIP = (Plant("MilesToArrival", 3, first=10),)


def test_releases_and_denials_are_listed_with_reasons(workspace: Workspace, client: TestClient) -> None:
    rt = workspace.runtime
    now = clock.now()
    plant(rt, "cn", HEART + TRIP, now - dt.timedelta(hours=1))
    denied = rt.border.run(request("cn", now, signals=["Vehicle.Driver.HeartRate"]), None, actor_role="officer")
    released = rt.border.run(request("cn", now, signals=["MilesToArrival"]), None, actor_role="officer")
    assert not denied.released and released.released
    r = client.get("/v1/border/exports", params={"region": "cn"}, headers=auth(workspace.token("officer")))
    assert r.status_code == 200, r.text
    rows = {t["transfer_id"]: t for t in r.json()["transfers"]}
    assert rows[denied.transfer_id]["status"] == "denied" and rows[released.transfer_id]["status"] == "released"
    assert any("cn.out.2024.sensitive" in reason for reason in rows[denied.transfer_id]["denied_reasons"])
    assert rows[released.transfer_id]["people"] == 3 and rows[released.transfer_id]["denied_reasons"] == []
    only = client.get(
        "/v1/border/exports", params={"region": "cn", "status": "denied"}, headers=auth(workspace.token("auditor"))
    ).json()["transfers"]
    assert [t["transfer_id"] for t in only] == [denied.transfer_id]
    bad = client.get("/v1/border/exports", params={"status": "lost"}, headers=auth(workspace.token("officer")))
    assert bad.status_code == 422
    analyst = client.get("/v1/border/exports", headers=auth(workspace.token("analyst-cn")))
    assert analyst.status_code == 403


def test_earlier_transfers_import_per_person_and_date_and_count_in_their_window(workspace: Workspace) -> None:
    rt = workspace.runtime
    csv = Path(workspace.folder / "earlier.csv")
    lines = ["subject,date,kind,destination,recipient"]
    lines += [f"{subject(i)},2025-11-03,pi,DE,acme-gmbh" for i in range(4)]  # last year: not in 2026's window
    lines += [f"{subject(i)},2026-01-15,pi,DE,acme-gmbh" for i in range(2)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["export", "import", str(csv), "--region", "cn", "-c", str(workspace.config), "--json"])
    assert result.exit_code == 0, result.output
    plant(rt, "cn", (Plant("MilesToArrival", 1, first=50),), utc("2026-03-01"))
    decision = rt.border.decide(request("cn", utc("2026-03-02"), signals=["MilesToArrival"]), at=utc("2026-03-02"))
    (count,) = [c for c in decision.counts if c.counter == "pi_non_sensitive"]
    assert (count.already, count.request) == (2, 1), "the 2025 people are outside the window from 1 January 2026"
    listed = rt.border.list_transfers("cn", TransferFilter(status="imported"))
    assert [t["date"] for t in listed] == ["2025-11-03", "2026-01-15"]

    # a bad row refuses the whole file, naming the row; nothing is written
    csv.write_text("subject,date,kind,destination,recipient\ns1,2026-01-15,pi,DE,acme-gmbh\ns2,2026-01-15,pi,CN,acme\n")
    result = runner.invoke(app, ["export", "import", str(csv), "--region", "cn", "-c", str(workspace.config)])
    assert result.exit_code == 2 and "row 3" in result.output and "not abroad" in result.output
    csv.write_text("subject,date,kind\ns1,2026-01-15,pi\n")
    result = runner.invoke(app, ["export", "import", str(csv), "-c", str(workspace.config)])
    assert result.exit_code == 2 and "destination" in result.output
    assert len(rt.border.list_transfers("cn", TransferFilter(status="imported"))) == 2
