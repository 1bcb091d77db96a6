"""The border API: officers manage bases, analysts ask for their region's data, denials are answered and logged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from tests.border.helpers import Plant, plant
from tests.conftest import Workspace, auth

NOW = dt.datetime.now(dt.UTC)
BASIS = {
    "id": "cn-scc-1",
    "region": "cn",
    "route": "standard_contract",
    "reference": "SCC filing 2024-17",
    "scope": {
        "categories": ["personal", "sensitive_personal"],
        "purposes": ["diagnostics"],
        "recipient": "acme-gmbh",
        "destinations": ["DE"],
    },
}


def _request(**over: Any) -> dict[str, Any]:
    return {
        "region": "cn",
        "destination": "DE",
        "recipient": "acme-gmbh",
        "purpose": "diagnostics",
        "since": (NOW - dt.timedelta(days=2)).isoformat(),
        "until": (NOW + dt.timedelta(minutes=5)).isoformat(),
        "fleet": "all",
        **over,
    }


def test_officer_manages_bases_auditor_reads_analyst_may_not(workspace: Workspace, client: TestClient) -> None:
    officer, auditor = auth(workspace.token("officer")), auth(workspace.token("auditor"))
    analyst = auth(workspace.token("analyst-cn"))
    assert client.post("/v1/border/bases", json=BASIS, headers=analyst).status_code == 403
    created = client.post("/v1/border/bases", json=BASIS, headers=officer)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    approved = client.post("/v1/border/bases/cn-scc-1/approve", json={"approved_on": "2024-07-01"}, headers=officer)
    assert approved.status_code == 200 and approved.json()["status_on_date"] == "approved"
    listed = client.get("/v1/border/bases", params={"date": "2024-08-01"}, headers=auditor).json()["bases"]
    assert [(b["id"], b["status_on_date"]) for b in listed] == [("cn-scc-1", "approved")]
    assert client.post("/v1/border/bases/cn-scc-1/revoke", headers=auditor).status_code == 403
    revoked = client.post("/v1/border/bases/cn-scc-1/revoke", headers=officer)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert client.get("/v1/border/bases/nope", headers=officer).status_code == 404


def test_analyst_decides_and_releases_own_region_only(workspace: Workspace, client: TestClient) -> None:
    plant(workspace.runtime, "cn", [Plant("MilesToArrival", 4), Plant("VehicleSpeed", 4)], NOW - dt.timedelta(hours=1))
    analyst_cn, analyst_eu = auth(workspace.token("analyst-cn")), auth(workspace.token("analyst-eu"))
    assert client.post("/v1/border/exports/decide", json=_request(), headers=analyst_eu).status_code == 403
    decided = client.post("/v1/border/exports/decide", json=_request(), headers=analyst_cn)
    assert decided.status_code == 200 and decided.json()["verdict"] == "allow"
    assert decided.json()["request"]["requester"] == "analyst"
    released = client.post("/v1/border/exports", json=_request(), headers=analyst_cn)
    assert released.status_code == 201, released.json()
    body = released.json()
    transfer = body["transfer_id"]
    manifest = client.get(f"/v1/border/exports/{transfer}/manifest", headers=analyst_cn).json()
    assert manifest["content_sha256"] == body["manifest"]["content_sha256"]
    name = manifest["files"][0]["name"]
    data = client.get(f"/v1/border/exports/{transfer}/files/{name}", headers=analyst_cn)
    assert data.status_code == 200 and data.content[:4] == b"PAR1"
    assert client.get(f"/v1/border/exports/{transfer}/manifest", headers=analyst_eu).status_code == 404
    assert client.get(f"/v1/border/exports/{transfer}/files/..%2Fmanifest.json", headers=analyst_cn).status_code == 404


def test_denial_answers_403_with_the_decision_and_is_logged(workspace: Workspace, client: TestClient) -> None:
    plant(workspace.runtime, "cn", [Plant("DCChargingPower", 2)], NOW - dt.timedelta(hours=1))
    denied = client.post("/v1/border/exports", json=_request(), headers=auth(workspace.token("officer")))
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "transfer_denied"
    (cls,) = error["details"]["decision"]["classes"]
    assert cls["decision"] == "deny" and cls["reasons"][0]["rule"] == "cn.out.important"
    assert error["details"]["ledger_indexes"]


def test_a_vin_in_the_body_is_refused_without_echo(workspace: Workspace, client: TestClient) -> None:
    body = _request(fleet=None, vehicles=["LSVM0TEST00000001"])
    r = client.post("/v1/border/exports/decide", json=body, headers=auth(workspace.token("officer")))
    assert r.status_code == 422 and "LSVM0TEST00000001" not in r.text
