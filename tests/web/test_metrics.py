"""GET /metrics: Prometheus text with records in and out, drops by reason, refusals and latencies; no personal data."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CN_VIN, Workspace, auth, record


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(client: TestClient, ws: Workspace) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=auth(ws.token("monitor")))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def test_metrics_count_what_was_stored_dropped_and_refused(workspace: Workspace, client: TestClient) -> None:
    token = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    owner = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    workspace.runtime.consents.grant(owner, "navigation", "separate", "7d", actor_role="officer")
    body = [
        record("m1", "VehicleSpeed", 40),
        record("m2", "Odometer", 10),
        record("m3", "Location", {"latitude": 31.2, "longitude": 121.5}),
    ]
    assert client.post("/v1/ingest", json=body, headers=auth(token)).status_code == 200
    # a resend: every record a duplicate
    assert client.post("/v1/ingest", json=body, headers=auth(token)).status_code == 200
    bad = client.post("/v1/ingest", content=b"{not json", headers=auth(token))
    assert bad.status_code in (400, 422)
    m = _scrape(client, workspace)
    stored = m[("onshore_records_stored_total", (("region", "cn"),))]
    received = m[("onshore_records_received_total", (("region", "cn"),))]
    duplicate = m[("onshore_records_dropped_total", (("reason", "duplicate"), ("region", "cn")))]
    no_consent = m.get(("onshore_records_dropped_total", (("reason", "no_consent"), ("region", "cn"))), 0.0)
    assert received == 6
    assert duplicate == 3
    assert stored + no_consent == 3 and stored >= 2
    assert workspace.runtime.regions["cn"].store.count_records() == stored
    assert m[("onshore_batches_total", (("kind", "records"), ("outcome", "ok")))] == 2
    assert m[("onshore_commit_seconds_count", (("region", "cn"),))] == 2
    assert m[("onshore_batches_in_flight", ())] == 0
    refused = {k: v for k, v in m.items() if k[0] == "onshore_refusals_total"}
    assert refused == {
        ("onshore_refusals_total", (("code", bad.json()["error"]["code"]), ("status", str(bad.status_code)))): 1.0
    }


def test_metrics_need_a_monitor_or_officer_token_and_hold_no_personal_data(
    workspace: Workspace, client: TestClient
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(workspace.token("analyst-cn"))).status_code == 403
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    token = issued.token
    assert client.get("/metrics", headers=auth(token)).status_code == 403
    client.post("/v1/ingest", json=[record("p1", "VehicleSpeed", 40)], headers=auth(token))
    text = client.get("/metrics", headers=auth(workspace.token("officer"))).text
    assert CN_VIN not in text and issued.vehicle.ref not in text
    labels = set(re.findall(r'(\w+)="', text))
    assert labels <= {"region", "reason", "kind", "outcome", "status", "code", "le"}, labels
