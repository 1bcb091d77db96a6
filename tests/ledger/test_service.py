"""The ledger service over a real workspace: every lifecycle event lands in the region's log, checkpoints are
signed with the region's key (rotation keeps old ones verifiable), witnesses cosign, bundles verify offline."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import update

from onshore.errors import InputError, NotFoundError
from onshore.ledger import (
    CheckpointError,
    LedgerIntegrityError,
    MerkleLog,
    NoteVerifier,
    generate_signer,
    leaf_hash,
    ledger_nodes,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from onshore.ledger.answers import SignedCheckpoint
from onshore.ledger.bundle import BUNDLE_FORMAT
from onshore.ledger.event_check import event_problems
from onshore.ledger.merkle import subtrees_of_range
from onshore.ledger.service import LedgerService
from onshore.ledger.sources import BundleLedgerSource
from onshore.ledger.verify import verify_ledger
from onshore.runtime import Runtime
from tests.conftest import CN_VIN, EU_VIN, Workspace, auth, record

# A position inside the test bounding box, not a real person's: it must never reach the ledger.
LATITUDE, LONGITUDE = 26.64731, 106.63912


def populate(ws: Workspace, client: TestClient) -> Counter[str]:
    """Drive every lifecycle operation that exists through the API; returns the cn events expected by kind."""
    cn = ws.runtime.vehicles.add(CN_VIN, "CN").token
    eu = ws.runtime.vehicles.add(EU_VIN, "EU").token
    position = {"latitude": LATITUDE, "longitude": LONGITUDE}
    granted = client.post(
        "/v1/consents", json={"purpose": "navigation", "level": "separate", "validity": "7d"}, headers=auth(cn)
    )
    assert granted.status_code == 200, granted.text
    for batch in range(3):
        body = [record(f"b{batch}-{i}", "VehicleSpeed", 40 + i) for i in range(4)]
        body.append(record(f"b{batch}-loc", "Location", position))
        assert client.post("/v1/ingest", json=body, headers=auth(cn)).status_code == 200
    queried = client.get("/v1/records", params={"region": "cn"}, headers=auth(ws.token("analyst-cn")))
    assert queried.status_code == 200
    assert client.delete("/v1/consents/navigation", headers=auth(cn)).status_code == 200
    assert client.post("/v1/ingest", json=[record("late-loc", "Location", position)], headers=auth(cn)).status_code
    assert client.post("/v1/ingest", json=[record("eu-1", "VehicleSpeed", 3)], headers=auth(eu)).status_code == 200
    return Counter({"consent_change": 2, "collect": 4, "store": 4, "query": 1})


def entries(ws: Workspace, region: str = "cn") -> list[bytes]:
    log = MerkleLog(region)
    with ws.runtime.regions[region].store.read("test") as conn:
        return log.entries(conn, 0, log.tree_size(conn))


def vkeys(service: LedgerService, region: str = "cn") -> list[NoteVerifier]:
    return [NoteVerifier.from_vkey(key.vkey) for key in service.public_keys(region)]


def test_every_lifecycle_event_is_in_the_log_and_carries_no_personal_data(
    workspace: Workspace, client: TestClient
) -> None:
    expected = populate(workspace, client)
    cn_entries = entries(workspace)
    assert Counter(orjson.loads(e)["kind"] for e in cn_entries) == expected
    assert [orjson.loads(e)["kind"] for e in entries(workspace, "eu")] == ["collect", "store"]
    stored = sum(orjson.loads(e)["counts"]["stored"] for e in cn_entries if orjson.loads(e)["kind"] == "store")
    assert stored == workspace.runtime.regions["cn"].store.count_records()
    vehicle_ref = workspace.runtime.vehicles.ref_for(CN_VIN, "CN")[1]
    for entry in cn_entries:
        assert event_problems(entry, "cn") == (orjson.loads(entry)["kind"], [])
        for secret in (CN_VIN, vehicle_ref, str(LATITUDE), str(LONGITUDE), "b0-0"):
            assert secret.encode() not in entry


def test_checkpoint_is_signed_with_the_region_key_and_recorded(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger, region = workspace.runtime.ledger, workspace.runtime.regions["cn"]
    signed = ledger.checkpoint("cn")
    assert signed.origin == "onshore.cn.cn-guizhou" and signed.tree_size == len(entries(workspace))
    seed = region.keys.key("ledger-signing-v1")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    [key] = ledger.public_keys("cn")
    assert NoteVerifier.from_vkey(key.vkey).public_key == public and key.active
    checked = verify_checkpoint(signed.note, [NoteVerifier.from_vkey(key.vkey)], origin=signed.origin)
    assert checked.checkpoint.root_hash == signed.root_hash
    with region.store.read("test") as conn:
        assert MerkleLog("cn").latest_checkpoint(conn).note == signed.note  # type: ignore[union-attr]
    with pytest.raises(CheckpointError):  # the eu log has its own key
        verify_checkpoint(signed.note, vkeys(ledger, "eu"), origin=signed.origin)


def test_current_checkpoint_is_reused_until_the_log_grows(workspace: Workspace, client: TestClient) -> None:
    ledger = workspace.runtime.ledger
    empty = ledger.current_checkpoint("cn")
    assert empty.tree_size == 0
    populate(workspace, client)
    first = ledger.current_checkpoint("cn")
    assert ledger.current_checkpoint("cn").note == first.note
    ledger.append_event("cn", _event("query"))
    grown = ledger.current_checkpoint("cn")
    assert grown.tree_size == first.tree_size + 1 and grown.note != first.note


def _event(kind: str, region: str = "cn") -> object:
    from onshore.model import LifecycleEvent

    return LifecycleEvent(kind=kind, region=region, at_ms=1, actor_role="officer", counts={"records": 0})


def test_rotation_keeps_old_checkpoints_verifiable(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger = workspace.runtime.ledger
    before = ledger.checkpoint("cn")
    [v1] = vkeys(ledger)
    new_key = ledger.rotate_key("cn")
    assert new_key.version == 2 and new_key.activated_at_size == before.tree_size
    old, new = ledger.public_keys("cn")
    assert not old.active and old.retired_at_size == before.tree_size and new.active
    v2 = NoteVerifier.from_vkey(new.vkey)
    handover = ledger.current_checkpoint("cn")  # the rotation signed the head with both keys
    for keys in ([v1], [v2]):
        verify_checkpoint(handover.note, keys, origin=handover.origin)
    ledger.append_event("cn", _event("query"))
    after = ledger.checkpoint("cn")
    verify_checkpoint(after.note, [v2], origin=after.origin)
    with pytest.raises(CheckpointError):
        verify_checkpoint(after.note, [v1], origin=after.origin)
    verify_checkpoint(before.note, [v1, v2], origin=before.origin)  # old checkpoints keep verifying
    bundle = ledger.export_bundle("cn", workspace.folder / "cn.json")
    verdict = verify_ledger(BundleLedgerSource(bundle.path), [v1, v2], trusted_checkpoint=before.note)
    assert verdict.ok, verdict.failures
    assert verdict.log_signers == [f"{v2.name}+{v2.key_id:08x}"]


def test_a_replaced_signing_key_file_is_refused(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    workspace.runtime.ledger.checkpoint("cn")
    key_file = next((workspace.folder / "onshore-data" / "cn" / "keys").glob("ledger-signing-v1.key"))
    key_file.write_text("11" * 32)
    fresh = Runtime(workspace.settings)
    try:
        with pytest.raises(LedgerIntegrityError, match="does not match its recorded public key"):
            fresh.ledger.checkpoint("cn")
    finally:
        fresh.close()


def test_signing_refuses_a_tree_altered_since_the_last_checkpoint(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger, store = workspace.runtime.ledger, workspace.runtime.regions["cn"].store
    signed = ledger.checkpoint("cn")
    ledger.append_event("cn", _event("query"))
    level, index = subtrees_of_range(0, signed.tree_size)[0]  # a node the signed root is folded from
    with store.transaction("tamper") as conn:
        conn.execute(
            update(ledger_nodes)
            .where(ledger_nodes.c.region == "cn", ledger_nodes.c.level == level, ledger_nodes.c.idx == index)
            .values(hash=b"\x00" * 32)
        )
    for sign in (ledger.checkpoint, ledger.current_checkpoint, ledger.rotate_key):
        with pytest.raises(LedgerIntegrityError, match="Refusing to sign"):
            sign("cn")


def test_service_proofs_verify_against_the_signed_root(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger = workspace.runtime.ledger
    early = ledger.checkpoint("cn")
    ledger.append_event("cn", _event("query"))
    late = ledger.checkpoint("cn")
    for event in ledger.events("cn", 0, late.tree_size):
        proof = ledger.inclusion_proof("cn", event.index, late.tree_size)
        assert proof.leaf_hash == leaf_hash(event.entry) and proof.root_hash == late.root_hash
        verify_inclusion(proof.leaf_hash, event.index, late.tree_size, proof.proof, late.root_hash)
        assert event.event is not None and event.event["region"] == "cn"
    consistency = ledger.consistency_proof("cn", early.tree_size, late.tree_size)
    verify_consistency(early.tree_size, late.tree_size, consistency.proof, early.root_hash, late.root_hash)
    with pytest.raises(InputError):
        ledger.events("cn", 0, 10_001)
    with pytest.raises(InputError):
        ledger.inclusion_proof("cn", late.tree_size, late.tree_size)
    with pytest.raises(NotFoundError):
        ledger.checkpoint("mars")


def test_export_bundle_holds_everything_needed_offline(workspace: Workspace, client: TestClient) -> None:
    expected = populate(workspace, client)
    ledger = workspace.runtime.ledger
    summary = ledger.export_bundle("cn", workspace.folder / "cn-ledger.json")
    bundle = orjson.loads(summary.path.read_bytes())
    assert bundle["format"] == BUNDLE_FORMAT and bundle["tree_size"] == sum(expected.values())
    assert [base64.b64decode(e) for e in bundle["entries"]] == entries(workspace)
    assert [k["vkey"] for k in bundle["keys"]] == [k.vkey for k in ledger.public_keys("cn")]
    verdict = verify_ledger(BundleLedgerSource(summary.path), vkeys(ledger))
    assert verdict.ok, verdict.failures
    assert Counter(verdict.events_by_kind) == expected and verdict.root_recomputed
    prefix = ledger.export_bundle("cn", workspace.folder / "prefix.json", up_to=5)
    assert orjson.loads(prefix.path.read_bytes())["tree_size"] == 5
    assert verify_ledger(BundleLedgerSource(prefix.path), vkeys(ledger)).ok
    with pytest.raises(InputError):
        ledger.export_bundle("cn", workspace.folder / "beyond.json", up_to=10_000)


def test_witness_cosignature_is_recorded_served_and_can_be_required(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger = workspace.runtime.ledger
    regulator = generate_signer("regulator.example/witness")
    signed = ledger.checkpoint("cn")
    with pytest.raises(CheckpointError, match="carries no witness cosignature"):
        ledger.record_cosigned("cn", signed.note)
    with pytest.raises(CheckpointError):  # the witness checks the log's signature before cosigning
        LedgerService.cosign(signed.note, regulator, log_keys=vkeys(ledger, "eu"))
    cosigned = LedgerService.cosign(signed.note, regulator, log_keys=vkeys(ledger))
    recorded = ledger.record_cosigned("cn", cosigned)
    assert isinstance(recorded, SignedCheckpoint)
    ledger.append_event("cn", _event("query"))
    assert ledger.witnessed_checkpoint("cn").note == cosigned  # type: ignore[union-attr]
    path = ledger.export_bundle("cn", workspace.folder / "w.json").path
    verdict = verify_ledger(BundleLedgerSource(path), vkeys(ledger), witnesses=[regulator.verifier])
    assert verdict.ok, verdict.failures
    assert verdict.witnessed_size == signed.tree_size and verdict.tree_size == signed.tree_size + 1
    other = generate_signer("other.example/witness")
    refused = verify_ledger(BundleLedgerSource(path), vkeys(ledger), witnesses=[other.verifier])
    assert not refused.ok and any("other.example/witness" in f for f in refused.failures)


def test_append_event_refuses_another_regions_event(workspace: Workspace) -> None:
    with pytest.raises(InputError):
        workspace.runtime.ledger.append_event("cn", _event("query", region="eu"))  # type: ignore[arg-type]
    assert workspace.runtime.ledger.append_event("cn", _event("query")) == 0  # type: ignore[arg-type]


def test_bundle_path_errors_are_input_errors(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write bundle"):
        workspace.runtime.ledger.export_bundle("cn", tmp_path / "missing" / "folder" / "b.json")
