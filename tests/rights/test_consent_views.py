"""Consent views say what is in force: each purpose with what it is for, its level, when granted and when it ends,
in the subject's app, on the vehicle's screen and in `onshore consent list`."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore import clock
from onshore.cli import app
from tests.conftest import CN_VIN, Workspace, auth

DAY_MS = 86_400_000


def _granted(ws: Workspace) -> tuple[str, str, int]:
    issued = ws.runtime.vehicles.add(CN_VIN, "CN")
    owner = ws.runtime.vehicles.owner_of(CN_VIN, "CN")
    before = clock.now_ms()
    ws.runtime.consents.grant(owner, "navigation", "separate", "90d", actor_role="officer")
    ws.runtime.consents.grant(owner, "vehicle_services", "ordinary", "7d", actor_role="officer")
    ws.runtime.consents.grant(owner, "vehicle_services", "ordinary", "365d", actor_role="officer")  # a renewal
    return issued.token, owner, before


def _expiry_days(row: dict[str, str], since_ms: int) -> float:
    expires = dt.datetime.fromisoformat(row["expires"].replace("Z", "+00:00"))
    return (expires.timestamp() * 1000 - since_ms) / DAY_MS


def test_the_vehicle_screen_and_the_api_show_purpose_level_and_expiry(workspace: Workspace, client: TestClient) -> None:
    token, owner, before = _granted(workspace)
    body = client.get("/v1/consents", headers=auth(token)).json()
    assert body["consents"] == {"navigation": "separate", "vehicle_services": "ordinary"}
    rows = {r["purpose"]: r for r in body["in_force"]}
    assert set(rows) == {"navigation", "vehicle_services"}
    assert rows["navigation"]["level"] == "separate" and rows["navigation"]["description"]
    assert 89.9 < _expiry_days(rows["navigation"], before) < 90.1
    assert 364.9 < _expiry_days(rows["vehicle_services"], before) < 365.1  # the renewal, not the 7 days
    workspace.runtime.consents.withdraw(owner, "navigation", actor_role="officer")
    after = client.get("/v1/consents", headers=auth(token)).json()
    assert [r["purpose"] for r in after["in_force"]] == ["vehicle_services"]


def test_onshore_consent_list(workspace: Workspace) -> None:
    _granted(workspace)
    runner = CliRunner()
    cfg = ["-c", str(workspace.config)]
    listed = runner.invoke(app, ["consent", "list", "--vin", CN_VIN, "--market", "CN", *cfg, "--json"])
    assert listed.exit_code == 0, listed.output
    got = json.loads(listed.stdout)
    assert [r["purpose"] for r in got["in_force"]] == ["navigation", "vehicle_services"]
    table = runner.invoke(app, ["consent", "list", "--vin", CN_VIN, "--market", "CN", *cfg], terminal_width=80)
    assert table.exit_code == 0 and "navigation" in table.output and "separate" in table.output
    assert runner.invoke(app, ["consent", "list", *cfg]).exit_code == 2  # neither --subject nor --vin
