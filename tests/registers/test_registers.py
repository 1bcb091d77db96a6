"""Registers: every create and change a ledger event; precise 4xx, nothing half-written; deadlines from the pack."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from onshore import clock
from onshore.ledger import MerkleLog
from tests.conftest import Workspace, auth


def _ms(*parts: int, tzinfo: dt.tzinfo = dt.UTC) -> int:
    return int(dt.datetime(*parts, tzinfo=tzinfo).timestamp() * 1000)


def _size(ws: Workspace) -> int:
    region = ws.runtime.regions["cn"]
    with region.store.read("size") as conn:
        return MerkleLog("cn").tree_size(conn)


def test_an_incident_is_recorded_changed_and_each_step_is_a_ledger_event(
    workspace: Workspace, client: TestClient
) -> None:
    officer = auth(workspace.token("officer"))
    before = _size(workspace)
    body = {"title": "misdirected diagnostics export", "occurred_on": "2026-01-05", "categories": ["personal"],
            "people_affected": 12, "handling": "recipient deleted the file"}  # fmt: skip
    with clock.frozen(_ms(2026, 3, 1, 4, tzinfo=dt.UTC)):
        r = client.post("/v1/registers/incident", json=body, headers=officer)
        assert r.status_code == 201, r.text
        entry = r.json()
        changed = client.patch(
            f"/v1/registers/incident/{entry['id']}", json={"closed_on": "2026-02-01"}, headers=officer
        )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert _size(workspace) == before + 2
    region = workspace.runtime.regions["cn"]
    with region.store.read("events") as conn:
        events = MerkleLog("cn").entries(conn, before, before + 2)
    assert all(b'"kind":"incident_change"' in e for e in events)
    assert b'"people_affected":12' in events[1] and b'"closed":20260201' in events[1]
    assert b"misdirected" not in events[0], "free text stays in the store, never in the ledger"


def test_bad_entries_are_refused_precisely_and_nothing_is_written(workspace: Workspace, client: TestClient) -> None:
    officer = auth(workspace.token("officer"))
    before = _size(workspace)
    incident = {"title": "x", "occurred_on": "2026-01-05", "categories": ["personal"], "people_affected": 1}
    provision = {"recipient": "insurer", "purpose": "navigation", "categories": ["personal"], "basis": "contract",
                 "people": 3, "records": 9, "started_on": "2026-01-05"}  # fmt: skip
    cases = [
        ("incident", {**incident, "occurred_on": "2026-13-01"}, 422, "occurred_on"),
        ("incident", {**incident, "people_affected": -1}, 422, "people_affected"),
        ("complaint", {"topic": "x", "received_on": "2026-01-05", "closed_on": "2026-01-01"}, 422, "closed_on"),
        ("rights_request", {"kind": "erasure", "received_on": "2026-01-05", "status": "handled"}, 422, "handled_on"),
        (
            "provision",
            {**provision, "categories": ["sensitive_personal"], "basis": "consent_ordinary"},
            422,
            "separate",
        ),
        ("provision", {**provision, "purpose": "no_such"}, 422, "no_such"),
        ("nonsense", {}, 404, "nonsense"),
    ]
    with clock.frozen(_ms(2026, 3, 1, 4, tzinfo=dt.UTC)):
        for register, body, status, needle in cases:
            r = client.post(f"/v1/registers/{register}", json=body, headers=officer)
            assert r.status_code == status, (register, r.text)
            assert needle in r.json()["error"]["message"], r.text
        future = {"title": "x", "occurred_on": "2026-03-09", "categories": ["personal"], "people_affected": 1}
        r = client.post("/v1/registers/incident", json=future, headers=officer)
        assert r.status_code == 422 and "future" in r.text
        vin = {"topic": "about LSVM0TEST00000001", "received_on": "2026-01-05"}
        r = client.post("/v1/registers/complaint", json=vin, headers=officer)
        assert r.status_code == 422 and "VIN" in r.text
    assert _size(workspace) == before
    assert client.get("/v1/registers/incident", headers=officer).json()["entries"] == []
    analyst = client.get("/v1/registers/incident", headers=auth(workspace.token("analyst-cn")))
    assert analyst.status_code == 403


def test_a_rights_request_has_the_pack_deadline_and_an_overdue_one_is_queued(workspace: Workspace) -> None:
    registers = workspace.runtime.registers
    with clock.frozen(_ms(2026, 3, 20, 4, tzinfo=dt.UTC)):
        # Monday 2 March + 10 working days = Monday 16 March (cn-auto erasure.deadline_working_days)
        late = registers.add(
            "rights_request", "cn", {"kind": "erasure", "received_on": "2026-03-02"}, actor_role="officer"
        )
        fresh = registers.add(
            "rights_request", "cn", {"kind": "erasure", "received_on": "2026-03-19"}, actor_role="officer"
        )
        access = registers.add(
            "rights_request", "cn", {"kind": "access", "received_on": "2026-03-02"}, actor_role="officer"
        )
        assert late.deadline == dt.date(2026, 3, 16) and access.deadline is None
        assert [e.id for e in registers.overdue()] == [late.id]
        done = registers.handle(access.id, actor_role="officer")
    assert done.body["status"] == "handled" and done.body["handled_on"] == "2026-03-20"
    assert fresh.deadline is not None and fresh.deadline > dt.date(2026, 3, 20)
