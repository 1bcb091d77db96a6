"""A workspace with known activity for the dashboard's tests: ingest with drops, bases (one a draft), a release
and a denial abroad, a pending rights request, an incident and a complaint. The clock is frozen at ``NOW``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from onshore import clock
from tests.border.helpers import basis, request
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, record

NOW = dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC)  # a Wednesday
NOW_MS = int(NOW.timestamp() * 1000)
CN_VIN_3 = "LSVM0TEST00000003"


@dataclass
class Desk:
    workspace: Workspace
    client: TestClient
    released: str  # transfer ids
    denied: str
    manifest: dict[str, object]

    def officer(self) -> dict[str, str]:
        return auth(self.workspace.token("officer"))

    def auditor(self) -> dict[str, str]:
        return auth(self.workspace.token("auditor"))


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.frozen(NOW_MS):
        yield


@pytest.fixture
def desk(workspace: Workspace, client: TestClient, frozen: None) -> Desk:
    rt = workspace.runtime
    ts = NOW_MS - 60_000
    tokens = {vin: rt.vehicles.add(vin, "CN").token for vin in (CN_VIN, CN_VIN_2, CN_VIN_3)}
    for vin in (CN_VIN, CN_VIN_3):  # the second vehicle's owner gives no consent: its records are dropped
        rt.consents.grant(rt.vehicles.owner_of(vin, "CN"), "navigation", "separate", "90d", actor_role="officer")
    batches = {
        CN_VIN: [record(f"a{i}", "MilesToArrival", 10 + i, ts) for i in range(3)]
        + [record("aloc", "Location", {"latitude": 31.23, "longitude": 121.47}, ts)],
        CN_VIN_2: [record(f"b{i}", "Location", {"latitude": 31.2, "longitude": 121.4}, ts) for i in range(2)],
        CN_VIN_3: [record("c0", "MilesToArrival", 5, ts)],
    }
    for vin, body in batches.items():
        assert client.post("/v1/ingest", json=body, headers=auth(tokens[vin])).status_code == 200
    abroad = {"storage_abroad": "Frankfurt data centre", "period_abroad": "2 years", "destinations": ["DE"]}
    basis(rt, "cn", "cn-sa-1", "security_assessment", approved_on="2026-01-05",
          recipient_contact="privacy@acme.example", **abroad)  # fmt: skip
    basis(rt, "cn", "cn-sc-draft", "standard_contract", approved_on=None,
          recipient_contact="privacy@acme.example", **abroad)  # fmt: skip
    since = (NOW - dt.timedelta(days=2)).isoformat()
    released = rt.border.run(request("cn", NOW, since=since, signals=["Location"]), None, actor_role="officer")
    denied = rt.border.run(
        request("cn", NOW, since=since, signals=["Location"], destination="US"), None, actor_role="officer"
    )
    assert released.released and not denied.released and released.manifest
    reg = rt.registers
    reg.add("rights_request", "cn", {"kind": "erasure", "received_on": "2026-06-08"}, actor_role="officer")
    reg.add("rights_request", "cn", {"kind": "erasure", "received_on": "2026-04-01"}, actor_role="officer")
    reg.add("incident", "cn", {"title": "diagnostics file sent to the wrong workshop", "occurred_on": "2026-03-02",
                               "categories": ["personal"], "people_affected": 12}, actor_role="officer")  # fmt: skip
    reg.add("complaint", "cn", {"topic": "asked why data went to Germany", "received_on": "2026-04-01",
                                "about_transfer": True}, actor_role="officer")  # fmt: skip
    return Desk(workspace, client, released.transfer_id, denied.transfer_id, released.manifest)
