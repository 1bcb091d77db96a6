"""GET /v1/records: analysts read only their region; every query is a lifecycle event."""

from __future__ import annotations

from fastapi.testclient import TestClient

from onshore.ledger import MerkleLog
from tests.conftest import CN_VIN, EU_VIN, Workspace, auth, record


def _seed(ws: Workspace, client: TestClient) -> None:
    cn = ws.runtime.vehicles.add(CN_VIN, "CN").token
    eu = ws.runtime.vehicles.add(EU_VIN, "EU").token
    client.post("/v1/ingest", json=[record("a", "VehicleSpeed", 1), record("b", "Soc", 50)], headers=auth(cn))
    client.post("/v1/ingest", json=[record("c", "VehicleSpeed", 2)], headers=auth(eu))


def _events(ws: Workspace, region: str) -> list[bytes]:
    log = MerkleLog(region)
    with ws.runtime.regions[region].store.read("test") as conn:
        return list(log.entries(conn, 0, log.tree_size(conn)))


def test_analyst_reads_own_region(workspace: Workspace, client: TestClient) -> None:
    _seed(workspace, client)
    r = client.get("/v1/records", params={"region": "cn"}, headers=auth(workspace.token("analyst-cn")))
    assert r.status_code == 200
    body = r.json()
    assert [row["signal"] for row in body["records"]] == ["VehicleSpeed", "Soc"]
    assert body["records"][1]["value"] == 50 and body["records"][1]["categories"] == ["general"]
    assert all("vin" not in row for row in body["records"])


def test_analyst_of_cn_cannot_read_eu(workspace: Workspace, client: TestClient) -> None:
    _seed(workspace, client)
    r = client.get("/v1/records", params={"region": "eu"}, headers=auth(workspace.token("analyst-cn")))
    assert r.status_code == 403 and "bound to region 'cn'" in r.json()["error"]["message"]


def test_officer_reads_any_region_and_filters(workspace: Workspace, client: TestClient) -> None:
    _seed(workspace, client)
    r = client.get("/v1/records", params={"region": "cn", "signal": "Soc"}, headers=auth(workspace.token("officer")))
    assert [row["msg_id"] for row in r.json()["records"]] == ["b"]


def test_records_pagination_cursor(workspace: Workspace, client: TestClient) -> None:
    _seed(workspace, client)
    headers = auth(workspace.token("officer"))
    first = client.get("/v1/records", params={"region": "cn", "limit": 1}, headers=headers).json()
    second = client.get(
        "/v1/records",
        params={"region": "cn", "limit": 1, "after_id": first["next_after_id"]},
        headers=headers,
    ).json()
    assert first["records"][0]["msg_id"] == "a" and second["records"][0]["msg_id"] == "b"


def test_query_is_logged_as_event_without_personal_data(workspace: Workspace, client: TestClient) -> None:
    _seed(workspace, client)
    before = len(_events(workspace, "cn"))
    client.get("/v1/records", params={"region": "cn"}, headers=auth(workspace.token("analyst-cn")))
    events = _events(workspace, "cn")
    assert len(events) == before + 1
    assert b'"kind":"query"' in events[-1] and b'"records":2' in events[-1]
    assert not any(CN_VIN.encode() in e for e in events)


def test_unknown_region_is_404_and_bad_params_422(workspace: Workspace, client: TestClient) -> None:
    headers = auth(workspace.token("officer"))
    assert client.get("/v1/records", params={"region": "mars"}, headers=headers).status_code == 404
    r = client.get("/v1/records", params={"region": "cn", "limit": 5000}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"


def test_vehicle_and_auditor_tokens_cannot_read_records(workspace: Workspace, client: TestClient) -> None:
    cn = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    for token in (cn, workspace.token("auditor")):
        assert client.get("/v1/records", params={"region": "cn"}, headers=auth(token)).status_code == 403


def test_vehicle_consent_api_grant_list_withdraw(workspace: Workspace, client: TestClient) -> None:
    cn = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    r = client.post(
        "/v1/consents", json={"purpose": "navigation", "level": "separate", "validity": "7d"}, headers=auth(cn)
    )
    assert r.status_code == 200, r.text
    listed = client.get("/v1/consents", headers=auth(cn)).json()
    assert listed["consents"] == {"navigation": "separate"}
    assert [(c["purpose"], c["level"]) for c in listed["in_force"]] == [("navigation", "separate")]
    loc = record("l1", "Location", {"latitude": 26.6, "longitude": 106.6})
    assert client.post("/v1/ingest", json=[loc], headers=auth(cn)).json()["accepted"] == 1
    assert client.delete("/v1/consents/navigation", headers=auth(cn)).status_code == 200
    loc2 = record("l2", "Location", {"latitude": 26.6, "longitude": 106.6})
    assert client.post("/v1/ingest", json=[loc2], headers=auth(cn)).json()["dropped_no_consent"] == 1
    assert client.delete("/v1/consents/navigation", headers=auth(cn)).status_code == 404
    bad = client.post("/v1/consents", json={"purpose": "world_domination"}, headers=auth(cn))
    assert bad.status_code == 400 and "valid:" in bad.json()["error"]["message"]
    forever = client.post("/v1/consents", json={"purpose": "navigation", "level": "separate"}, headers=auth(cn))
    assert forever.status_code == 400 and "must have a validity" in forever.json()["error"]["message"]
