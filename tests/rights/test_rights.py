"""Drivers' rights end to end: subjects and bindings, consent, encryption at rest, access, erasure, retention."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from onshore.ledger import MerkleLog
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, now_ms, record

MARK_A = "Zebra Quartet Nine"  # invented media titles: known plaintexts to hunt for on disk
MARK_B = "Yodel Orchestra Two"


def _vehicle(ws: Workspace, vin: str) -> tuple[str, str]:
    issued = ws.runtime.vehicles.add(vin, "CN")
    owner = ws.runtime.vehicles.owner_of(vin, "CN")
    ws.runtime.consents.grant(owner, "infotainment", "ordinary", "90d", actor_role="officer")
    ws.runtime.consents.grant(owner, "navigation", "separate", "90d", actor_role="officer")
    return issued.token, owner


def _files_containing(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _ingest_media(client: TestClient, token: str, prefix: str, title: str, n: int = 3) -> None:
    body = [record(f"{prefix}{i}", "MediaNowPlayingTitle", f"{title} {i}") for i in range(n)]
    body.append(record(f"{prefix}loc", "Location", {"latitude": 39.91, "longitude": 116.35}))
    r = client.post("/v1/ingest", json=body, headers=auth(token))
    assert r.status_code == 200 and r.json()["accepted"] == n + 1, r.text


def test_personal_values_are_never_on_disk_in_plaintext(workspace: Workspace, client: TestClient) -> None:
    token, _ = _vehicle(workspace, CN_VIN)
    _ingest_media(client, token, "a", MARK_A)
    assert _files_containing(workspace.folder, MARK_A.encode()) == []
    rows = client.get(
        "/v1/records",
        params={"region": "cn", "signal": "MediaNowPlayingTitle"},
        headers=auth(workspace.token("officer")),
    ).json()["records"]
    assert sorted(r["value"] for r in rows) == [f"{MARK_A} {i}" for i in range(3)]


def test_erasure_destroys_keys_purges_rows_and_leaves_others_readable(workspace: Workspace, client: TestClient) -> None:
    token_a, subject_a = _vehicle(workspace, CN_VIN)
    token_b, subject_b = _vehicle(workspace, CN_VIN_2)
    _ingest_media(client, token_a, "a", MARK_A)
    _ingest_media(client, token_b, "b", MARK_B)
    region = workspace.runtime.regions["cn"]
    before = region.subjects.records_of(subject_a)
    assert len(before) == 4

    r = client.post(f"/v1/subjects/{subject_a}/erasure", headers=auth(workspace.token("officer")))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["regions"]["cn"]["key_destroyed"] is True and report["regions"]["cn"]["records_purged"] == 4
    assert report["within_deadline"] is True and report["deadline_working_days"] == 10
    assert report["derived_data"], "derived data is listed honestly"

    # no plaintext, no key, no rows: even the old ciphertexts left in free pages cannot be opened
    assert _files_containing(workspace.folder, MARK_A.encode()) == []
    assert not region.subject_keys.exists(subject_a)
    assert region.subjects.records_of(subject_a) == []
    # the other subject still decrypts
    bundle_b = client.post(f"/v1/subjects/{subject_b}/access", headers=auth(workspace.token("officer"))).json()
    titles = sorted(r["value"] for r in bundle_b["regions"]["cn"]["records"] if r["signal"] == "MediaNowPlayingTitle")
    assert titles == [f"{MARK_B} {i}" for i in range(3)]
    # the ledger still verifies end to end and holds the erasure
    log = MerkleLog("cn")
    with region.store.read("verify") as conn:
        log.audit(conn)
        entries = log.entries(conn, 0, log.tree_size(conn))
    assert any(b'"kind":"erasure_request"' in e for e in entries)
    assert any(b'"purpose":"erasure"' in e and b'"records":4' in e for e in entries)
    # a second erasure is refused
    again = client.post(f"/v1/subjects/{subject_a}/erasure", headers=auth(workspace.token("officer")))
    assert again.status_code == 409


def test_after_erasure_the_vehicle_collects_no_personal_data_for_them(workspace: Workspace, client: TestClient) -> None:
    token, subject = _vehicle(workspace, CN_VIN)
    workspace.runtime.requests.erase(subject, actor_role="officer")
    r = client.post(
        "/v1/ingest",
        json=[record("x1", "MediaNowPlayingTitle", "t"), record("x2", "VehicleSpeed", 3)],
        headers=auth(token),
    ).json()
    assert r["accepted"] == 1 and r["dropped_no_consent"] == 1


def test_withdrawal_stops_collection_for_the_next_batch(workspace: Workspace, client: TestClient) -> None:
    token, subject = _vehicle(workspace, CN_VIN)
    assert (
        client.post("/v1/ingest", json=[record("w1", "MediaNowPlayingTitle", "t")], headers=auth(token)).json()[
            "accepted"
        ]
        == 1
    )
    workspace.runtime.consents.withdraw(subject, "infotainment", actor_role="subject")
    r = client.post("/v1/ingest", json=[record("w2", "MediaNowPlayingTitle", "t")], headers=auth(token)).json()
    assert r["accepted"] == 0 and r["dropped_no_consent"] == 1


def test_expired_consent_behaves_as_withdrawn(workspace: Workspace) -> None:
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    owner = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    workspace.runtime.consents.grant(owner, "infotainment", "ordinary", "trip", actor_role="subject")  # 12 h
    body = [{"msg_id": "e1", "ts": now_ms(), "signal": "MediaNowPlayingTitle", "value": "t"}]
    assert workspace.runtime.ingest.ingest_records(issued.vehicle, body).accepted == 1
    later = now_ms() + 13 * 3_600_000
    body2 = [{"msg_id": "e2", "ts": later - 1000, "signal": "MediaNowPlayingTitle", "value": "t"}]
    result = workspace.runtime.ingest.ingest_records(issued.vehicle, body2, now_ms=later)
    assert result.accepted == 0 and result.dropped_no_consent == 1


def test_driver_profile_binding_splits_data_between_people(workspace: Workspace, client: TestClient) -> None:
    token, owner = _vehicle(workspace, CN_VIN)
    driver, driver_token = workspace.runtime.subjects.bind(CN_VIN, "CN", "driver", profile="2")
    workspace.runtime.consents.grant(driver, "infotainment", "ordinary", "7d", actor_role="subject")
    after_binding = now_ms() + 500  # the driver is bound from now on: their drive comes after
    body = [
        dict(
            record(f"p{i}", "MediaNowPlayingTitle", f"song {i}", ts=after_binding),
            **({"profile": "2"} if i % 2 else {}),
        )
        for i in range(6)
    ]
    assert client.post("/v1/ingest", json=body, headers=auth(token)).json()["accepted"] == 6
    mine = client.post(f"/v1/subjects/{driver}/access", headers=auth(driver_token)).json()
    ids = sorted(r["msg_id"] for r in mine["regions"]["cn"]["records"])
    assert ids == ["p1", "p3", "p5"], "the driver's bundle holds their data and nobody else's"
    owners = workspace.runtime.requests.access_bundle(owner, actor_role="officer")
    assert sorted(r["msg_id"] for r in owners["regions"]["cn"]["records"]) == ["p0", "p2", "p4"]
    assert mine["summary"]["stored_in"] == [{"region": "cn", "jurisdiction": "CN", "location": "cn-guizhou"}]


def test_subject_app_grants_and_lists_own_consents(workspace: Workspace, client: TestClient) -> None:
    workspace.runtime.vehicles.add(CN_VIN, "CN")
    subject, token = workspace.runtime.subjects.bind(CN_VIN, "CN", "driver", profile="7")
    r = client.post(
        "/v1/subjects/me/consents",
        json={"purpose": "navigation", "level": "separate", "validity": "7d"},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    assert client.get("/v1/subjects/me/consents", headers=auth(token)).json()["consents"] == {"navigation": "separate"}
    forever = client.post(
        "/v1/subjects/me/consents", json={"purpose": "navigation", "level": "separate"}, headers=auth(token)
    )
    assert forever.status_code == 400 and "validity" in forever.json()["error"]["message"]
    assert client.delete("/v1/subjects/me/consents/navigation", headers=auth(token)).status_code == 200


def test_rights_bad_input_gets_clear_errors(workspace: Workspace, client: TestClient) -> None:
    _vehicle(workspace, CN_VIN)
    _vehicle(workspace, CN_VIN_2)
    a, token_a = workspace.runtime.subjects.bind(CN_VIN, "CN", "driver", profile="1")
    b, _ = workspace.runtime.subjects.bind(CN_VIN_2, "CN", "driver", profile="1")
    officer = auth(workspace.token("officer"))
    assert client.post("/v1/subjects/sub_nobody/access", headers=officer).status_code == 404
    forged = client.post(f"/v1/subjects/{a}/access", headers=auth("ons_sub_forgedtoken"))
    assert forged.status_code == 401 and "unknown subject token" in forged.json()["error"]["message"]
    other = client.post(f"/v1/subjects/{b}/access", headers=auth(token_a))
    assert other.status_code == 403 and "themselves" in other.json()["error"]["message"]
    assert client.post(f"/v1/subjects/{b}/erasure", headers=auth(token_a)).status_code == 403
    assert client.post(f"/v1/subjects/{a}/erasure", headers=auth(token_a)).status_code == 200
    assert client.post(f"/v1/subjects/{a}/erasure", headers=officer).status_code == 409
    # the erased subject's token no longer works
    assert client.get("/v1/subjects/me/consents", headers=auth(token_a)).status_code == 401


def test_retention_deletes_exactly_what_has_expired(workspace: Workspace) -> None:
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    owner = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    workspace.runtime.consents.grant(owner, "infotainment", "ordinary", None, actor_role="subject")
    day = 86_400_000
    now = now_ms()
    body = [
        {"msg_id": "old-personal", "ts": now - 400 * day, "signal": "MediaNowPlayingTitle", "value": "t"},
        {"msg_id": "new-personal", "ts": now - 10 * day, "signal": "MediaNowPlayingTitle", "value": "t"},
        {"msg_id": "old-general", "ts": now - 400 * day, "signal": "VehicleSpeed", "value": 1},
    ]
    assert workspace.runtime.ingest.ingest_records(issued.vehicle, body).accepted == 3
    results = workspace.runtime.retention.run()
    cn = {r.rule_id: r for r in results if r.region == "cn"}
    assert cn["cn.retention.personal-policy"].deleted == 1
    assert "cn.retention.location-7d" not in cn, "a rule on an unconfirmed [U] fact is held back"
    left = sorted(r["msg_id"] for r in workspace.runtime.regions["cn"].store.query_records())
    assert left == ["new-personal", "old-general"]
    assert workspace.runtime.retention.run()[0].deleted == 0, "running again deletes nothing more"


def test_retention_cli_and_subject_cli(workspace: Workspace) -> None:
    from typer.testing import CliRunner

    from onshore.cli import app

    workspace.runtime.vehicles.add(CN_VIN, "CN")
    runner = CliRunner()
    cfg = ["-c", str(workspace.config)]
    bound = runner.invoke(app, ["subject", "bind", "--vin", CN_VIN, "--market", "CN", "--profile", "3", *cfg, "--json"])
    assert bound.exit_code == 0, bound.output
    ran = runner.invoke(app, ["retention", "run", *cfg, "--json"])
    assert ran.exit_code == 0 and '"deleted":0' in ran.stdout
    missing = runner.invoke(app, ["subject", "erase", "--subject", "sub_nobody", *cfg])
    assert missing.exit_code == 2 and "no such subject" in missing.output
