"""The known activity the reports tests build (ingest with and without consent, two transfers and a denial, rights
requests within and past their deadline, an incident, a complaint, a provision), with every figure as the test
computes it from what it did."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from onshore import clock
from onshore.reports.service import ReportService
from tests.border.helpers import basis, request
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, record

CN_VIN_3 = "LSVM0TEST00000003"
NOW = dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC)  # a Wednesday


def ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def activity(workspace: Workspace, client: TestClient) -> dict[str, int]:
    """Known activity in 2026; returns every figure as the test computes it from what it did."""
    rt = workspace.runtime
    officer = auth(workspace.token("officer"))
    with clock.frozen(ms(NOW)):
        ts = ms(NOW) - 60_000
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


def write(ws: Workspace, kind: str, lang: str, fmt: str) -> Path:
    with clock.frozen(ms(NOW)):
        return ReportService(ws.runtime).generate(kind, 2026, lang, fmt, ws.folder / "reports").path
