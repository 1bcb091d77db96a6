"""POST /v1/ingest end to end over the in-process API: residency, consent gate, dedup, bad input."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import CN_VIN, EU_VIN, Workspace, auth, record


def _register(ws: Workspace, vin: str, market: str) -> str:
    return ws.runtime.vehicles.add(vin, market).token


def _counts(ws: Workspace) -> dict[str, int]:
    return {name: r.store.count_records() for name, r in ws.runtime.regions.items()}


def _grant(ws: Workspace, vin: str, market: str, purpose: str, level: str = "ordinary") -> None:
    owner = ws.runtime.vehicles.owner_of(vin, market)
    ws.runtime.consents.grant(owner, purpose, level, "7d", actor_role="officer")


def test_cn_vehicle_records_land_only_in_cn_region(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    eu = _register(workspace, EU_VIN, "EU")
    _grant(workspace, EU_VIN, "EU", "vehicle_services")  # under GDPR even speed linked to a VIN is personal
    r1 = client.post(
        "/v1/ingest",
        json=[record("a1", "VehicleSpeed", 42.5), record("a2", "Odometer", 1200)],
        headers=auth(cn),
    )
    r2 = client.post("/v1/ingest", json=[record("b1", "VehicleSpeed", 80)], headers=auth(eu))
    assert r1.status_code == 200, r1.text
    assert r1.json()["region"] == "cn" and r1.json()["accepted"] == 2
    assert r2.json()["region"] == "eu" and r2.json()["accepted"] == 1
    assert _counts(workspace) == {"cn": 2, "eu": 1}
    assert workspace.runtime.regions["cn"].store.origins() == {"CN": 2}
    assert workspace.runtime.regions["eu"].store.origins() == {"EU": 1}


@pytest.mark.one_backend
@pytest.mark.parametrize("claim", [{"vin": EU_VIN}, {"country": "EU"}, {"market": "EU"}, {"origin": "EU"}])
def test_payload_claiming_another_vin_or_country_is_refused_whole(
    workspace: Workspace, client: TestClient, claim: dict[str, str]
) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    bad = dict(record("c2", "VehicleSpeed", 10), **claim)
    r = client.post("/v1/ingest", json=[record("c1", "VehicleSpeed", 10), bad], headers=auth(cn))
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["index"] == 1
    assert "token" in r.json()["error"]["message"]
    assert _counts(workspace) == {"cn": 0, "eu": 0}


def test_no_consent_drops_personal_data_and_keeps_vehicle_operational_data(
    workspace: Workspace, client: TestClient
) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    body = [
        record("d1", "VehicleSpeed", 50),
        record("d2", "Location", {"latitude": 26.6470123, "longitude": 106.6302456}),
        record("d3", "MediaNowPlayingArtist", "Invented Band"),
        record("d4", "Soc", 77.5),
    ]
    r = client.post("/v1/ingest", json=body, headers=auth(cn)).json()
    assert r["accepted"] == 2
    assert r["dropped_no_consent"] == 2
    stored = {row["signal"] for row in workspace.runtime.regions["cn"].store.query_records()}
    assert stored == {"VehicleSpeed", "Soc"}


def test_consent_for_navigation_lets_location_in_coarsened(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    _grant(workspace, CN_VIN, "CN", "navigation", "separate")
    r = client.post(
        "/v1/ingest",
        json=[record("e1", "Location", {"latitude": 26.6470123, "longitude": 106.6302456})],
        headers=auth(cn),
    ).json()
    assert r["accepted"] == 1 and r["dropped_no_consent"] == 0
    region = workspace.runtime.regions["cn"]
    raw = region.store.query_records()
    assert raw[0]["value"].startswith("e1:"), "personal values are stored encrypted"
    row = region.open_rows(raw)[0]
    assert orjson.loads(row["value"]) == {"latitude": 26.647, "longitude": 106.6302}
    assert set(row["categories"].split(",")) >= {"personal", "sensitive_personal"}


def test_ordinary_consent_is_not_enough_for_sensitive_location(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    _grant(workspace, CN_VIN, "CN", "navigation", "ordinary")
    r = client.post(
        "/v1/ingest",
        json=[record("e2", "Location", {"latitude": 26.6, "longitude": 106.6})],
        headers=auth(cn),
    )
    assert r.json()["dropped_no_consent"] == 1 and r.json()["accepted"] == 0


def test_position_inside_sensitive_zone_is_important(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    _grant(workspace, CN_VIN, "CN", "navigation", "separate")
    inside = {"latitude": 26.6475, "longitude": 106.7100}  # the illustrative north-Guiyang zone
    outside = {"latitude": 26.5800, "longitude": 106.7100}
    r = client.post(
        "/v1/ingest",
        json=[record("z1", "Location", inside), record("z2", "Location", outside)],
        headers=auth(cn),
    ).json()
    assert r["zone_hits"] == 1 and r["by_category"]["important"] == 1
    rows = {row["msg_id"]: row for row in workspace.runtime.regions["cn"].store.query_records()}
    assert "important" in rows["z1"]["categories"].split(",") and "sensitive_area" in rows["z1"]["tags"]
    assert rows["z1"]["zone"] == "demo-gy-north"
    assert "important" not in rows["z2"]["categories"].split(",") and rows["z2"]["zone"] is None


def test_unknown_signal_is_kept_as_personal_and_reported(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    _grant(workspace, CN_VIN, "CN", "vehicle_services", "ordinary")
    r = client.post("/v1/ingest", json=[record("u1", "VendorExperimentalFoo", 3)], headers=auth(cn)).json()
    assert r["accepted"] == 1 and r["unclassified_signals"] == ["VendorExperimentalFoo"]
    row = workspace.runtime.regions["cn"].store.query_records()[0]
    assert row["categories"] == "personal" and "unclassified" in row["tags"]
    assert [u["signal"] for u in workspace.runtime.regions["cn"].store.unclassified()] == ["VendorExperimentalFoo"]


def test_unknown_signal_without_consent_is_reported_not_silently_dropped(
    workspace: Workspace, client: TestClient
) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    r = client.post("/v1/ingest", json=[record("u2", "VendorExperimentalBar", 3)], headers=auth(cn)).json()
    assert r["dropped_no_consent"] == 1 and r["unclassified_signals"] == ["VendorExperimentalBar"]
    assert [u["signal"] for u in workspace.runtime.regions["cn"].store.unclassified()] == ["VendorExperimentalBar"]


def test_duplicates_are_not_stored_twice(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    body = [record("f1", "VehicleSpeed", 1), record("f2", "VehicleSpeed", 2), record("f1", "VehicleSpeed", 1)]
    first = client.post("/v1/ingest", json=body, headers=auth(cn)).json()
    again = client.post("/v1/ingest", json=body[:2], headers=auth(cn)).json()
    assert (first["accepted"], first["duplicate"]) == (2, 1)
    assert (again["accepted"], again["duplicate"]) == (0, 2)
    assert again["by_category"] == {}
    assert _counts(workspace)["cn"] == 2


def test_ndjson_body_is_accepted(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    body = b"\n".join(orjson.dumps(record(f"n{i}", "VehicleSpeed", i)) for i in range(5)) + b"\n"
    r = client.post("/v1/ingest", content=body, headers={**auth(cn), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["accepted"] == 5


BAD_INPUTS = [
    # (name, content, content-type, status, words expected in the message)
    ("malformed JSON", b'[{"msg_id": "x",', "application/json", 400, "not valid JSON"),
    (
        "malformed NDJSON line",
        b'{"msg_id":"a","ts":1,"signal":"Soc","value":1}\n{oops',
        "application/x-ndjson",
        400,
        "line 2",
    ),
    ("not an array", b'"hello"', "application/json", 400, "JSON array"),
    ("empty batch", b"[]", "application/json", 400, "empty"),
    (
        "bad signal name",
        orjson.dumps([record("g1", "vehicle speed!", 1)]),
        "application/json",
        422,
        "got 'vehicle speed!'",
    ),
    (
        "lower-case VSS path",
        orjson.dumps([record("g1", "vehicle.speed", 1)]),
        "application/json",
        422,
        "signal",
    ),
    (
        "number signal given text",
        orjson.dumps([record("g1", "VehicleSpeed", "fast")]),
        "application/json",
        422,
        "expected a number",
    ),
    (
        "location given a number",
        orjson.dumps([record("g1", "Location", 5)]),
        "application/json",
        422,
        "latitude",
    ),
    (
        "latitude out of range",
        orjson.dumps([record("g1", "Location", {"latitude": 91, "longitude": 0})]),
        "application/json",
        422,
        "[-90, 90]",
    ),
    (
        "missing msg_id",
        orjson.dumps([{"ts": 1700000000000, "signal": "Soc", "value": 1}]),
        "application/json",
        422,
        "msg_id",
    ),
    (
        "missing value",
        orjson.dumps([{"msg_id": "m", "ts": 1700000000000, "signal": "Soc"}]),
        "application/json",
        422,
        "value",
    ),
    ("bad timestamp", orjson.dumps([record("g1", "Soc", 1, ts=-5)]), "application/json", 422, "ts"),
    ("text/plain", b"hello", "text/plain", 415, "content type"),
    (
        "purpose the signal may not serve",
        orjson.dumps([dict(record("g1", "VehicleSpeed", 1), purpose="infotainment")]),
        "application/json",
        422,
        "may be collected for",
    ),
]


@pytest.mark.one_backend
@pytest.mark.parametrize(("name", "content", "ctype", "status", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_precise_4xx_and_stores_nothing(
    workspace: Workspace, client: TestClient, name: str, content: bytes, ctype: str, status: int, words: str
) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    good_then_bad = content
    r = client.post("/v1/ingest", content=good_then_bad, headers={**auth(cn), "Content-Type": ctype})
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"] or words in r.text
    assert _counts(workspace) == {"cn": 0, "eu": 0}


def test_a_bad_record_after_good_ones_rejects_the_whole_batch(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    body = [record(f"h{i}", "VehicleSpeed", i) for i in range(10)] + [record("h10", "VehicleSpeed", "x")]
    r = client.post("/v1/ingest", json=body, headers=auth(cn))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["index"] == 10
    assert _counts(workspace)["cn"] == 0


def test_oversize_batch_is_413(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    limit = workspace.settings.ingest.max_batch_records
    body = [record(f"o{i}", "VehicleSpeed", 1) for i in range(limit + 1)]
    r = client.post("/v1/ingest", json=body, headers=auth(cn))
    assert r.status_code == 413 and "max_batch_records" in r.json()["error"]["message"]
    assert _counts(workspace)["cn"] == 0


def test_oversize_body_is_413(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    big = b"[" + b" " * (workspace.settings.ingest.max_body_bytes + 10) + b"]"
    r = client.post("/v1/ingest", content=big, headers={**auth(cn), "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.one_backend
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer onv_cn_notarealtoken"}, "unknown vehicle token"),
        ({"Authorization": "Bearer onv_xx_notarealtoken"}, "unknown vehicle token"),
        ({"Authorization": "Basic abc"}, "missing bearer token"),
    ],
)
def test_missing_or_unknown_token_is_401(
    workspace: Workspace, client: TestClient, headers: dict[str, str], reason: str
) -> None:
    r = client.post("/v1/ingest", json=[record("t1", "Soc", 1)], headers=headers)
    assert r.status_code == 401 and reason in r.json()["error"]["message"]


def test_revoked_token_is_401(workspace: Workspace, client: TestClient) -> None:
    cn = _register(workspace, CN_VIN, "CN")
    assert client.post("/v1/ingest", json=[record("r1", "Soc", 1)], headers=auth(cn)).status_code == 200
    workspace.runtime.vehicles.revoke(CN_VIN)
    r = client.post("/v1/ingest", json=[record("r2", "Soc", 1)], headers=auth(cn))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert _counts(workspace)["cn"] == 1


def test_api_token_cannot_ingest(workspace: Workspace, client: TestClient) -> None:
    r = client.post("/v1/ingest", json=[record("k1", "Soc", 1)], headers=auth(workspace.token("officer")))
    assert r.status_code == 403
