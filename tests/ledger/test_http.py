"""The ledger API: roles, the one error shape, base64 proofs that verify against the signed checkpoint."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from onshore.ledger import (
    MerkleLog,
    NoteVerifier,
    generate_signer,
    leaf_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from onshore.ledger.service import LedgerService
from onshore.model import LifecycleEvent
from tests.conftest import Workspace, auth

from .test_service import populate


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _auditor(ws: Workspace) -> dict[str, str]:
    return auth(ws.token("auditor"))


def test_only_auditors_and_officers_read_the_ledger(workspace: Workspace, client: TestClient) -> None:
    cn_vehicle = workspace.runtime.vehicles.add("LSVM0TEST00000009", "CN").token
    paths = ["checkpoint", "keys", "events", "proof/inclusion?index=0&size=1", "proof/consistency?from=1&to=1"]
    for path in paths:
        anonymous = client.get(f"/v1/ledger/cn/{path}")
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
        for token in (workspace.token("analyst-cn"), cn_vehicle):
            refused = client.get(f"/v1/ledger/cn/{path}", headers=auth(token))
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    for name in ("auditor", "officer"):
        assert client.get("/v1/ledger/cn/checkpoint", headers=auth(workspace.token(name))).status_code == 200


def test_unknown_region_is_404_in_the_one_error_shape(workspace: Workspace, client: TestClient) -> None:
    for path in ("checkpoint", "keys", "events", "proof/inclusion?index=0&size=1", "proof/consistency?from=1&to=2"):
        answer = client.get(f"/v1/ledger/mars/{path}", headers=_auditor(workspace))
        assert answer.status_code == 404, path
        assert set(answer.json()) == {"error"} and answer.json()["error"]["code"] == "not_found"
        assert "'mars'" in answer.json()["error"]["message"]


def test_checkpoint_verifies_with_the_published_key_and_is_reused(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    keys = client.get("/v1/ledger/cn/keys", headers=_auditor(workspace)).json()
    assert keys["origin"] == "onshore.cn.cn-guizhou" and [k["status"] for k in keys["keys"]] == ["active"]
    verifier = NoteVerifier.from_vkey(keys["keys"][0]["vkey"])
    body = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()
    checked = verify_checkpoint(body["note"], [verifier], origin=keys["origin"]).checkpoint
    assert (checked.tree_size, checked.root_hash) == (body["tree_size"], _b64(body["root_hash"]))
    assert body["witnessed_note"] is None and body["region"] == "cn"
    again = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()
    assert again["note"] == body["note"]


def test_inclusion_and_consistency_proofs_verify(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    early = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()
    workspace.runtime.ledger.append_event(
        "cn", LifecycleEvent(kind="query", region="cn", at_ms=1, actor_role="analyst")
    )
    late = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()
    size, root = late["tree_size"], _b64(late["root_hash"])
    events = client.get("/v1/ledger/cn/events", params={"end": size}, headers=_auditor(workspace)).json()
    for event in events["events"]:
        entry = _b64(event["entry"])
        proof = client.get(
            "/v1/ledger/cn/proof/inclusion", params={"index": event["index"], "size": size}, headers=_auditor(workspace)
        ).json()
        assert _b64(proof["leaf_hash"]) == leaf_hash(entry)
        verify_inclusion(leaf_hash(entry), event["index"], size, [_b64(h) for h in proof["proof"]], root)
    consistency = client.get(
        "/v1/ledger/cn/proof/consistency",
        params={"from": early["tree_size"], "to": size},
        headers=_auditor(workspace),
    ).json()
    proof = [_b64(h) for h in consistency["proof"]]
    verify_consistency(early["tree_size"], size, proof, _b64(early["root_hash"]), root)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("proof/inclusion?index=11&size=11", 400),  # index not below size
        ("proof/inclusion?index=0&size=12", 400),  # size beyond the log
        ("proof/inclusion?index=-1&size=5", 422),
        ("proof/inclusion?size=5", 422),
        ("proof/consistency?from=0&to=5", 422),
        ("proof/consistency?from=6&to=5", 400),
        ("proof/consistency?from=5&to=12", 400),
        ("events?start=5&end=4", 400),
        ("events?start=0&end=12", 400),
        ("events?start=-1", 422),
        ("events?start=x", 422),
    ],
)
def test_bad_ranges_are_client_errors_in_the_one_shape(
    workspace: Workspace, client: TestClient, path: str, status: int
) -> None:
    populate(workspace, client)  # 11 events in cn
    answer = client.get(f"/v1/ledger/cn/{path}", headers=_auditor(workspace))
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(answer.json()) == {"error"} and error["code"] and error["message"]


def test_events_are_paged_and_a_page_holds_at_most_10000(workspace: Workspace, client: TestClient) -> None:
    store = workspace.runtime.regions["cn"].store
    with store.transaction("bulk events") as conn:
        MerkleLog("cn").append_batch(conn, [b'{"n":%d}' % i for i in range(10_050)])
    first = client.get("/v1/ledger/cn/events", headers=_auditor(workspace)).json()
    assert (first["start"], first["end"], first["next"], first["tree_size"]) == (0, 1000, 1000, 10_050)
    assert first["events"][3] == {"index": 3, "entry": base64.b64encode(b'{"n":3}').decode(), "event": {"n": 3}}
    full = client.get(
        "/v1/ledger/cn/events", params={"start": 50, "end": 10_050, "decode": "false"}, headers=_auditor(workspace)
    )
    assert full.status_code == 200 and full.json()["next"] is None and len(full.json()["events"]) == 10_000
    assert "event" not in full.json()["events"][0]
    too_long = client.get("/v1/ledger/cn/events", params={"start": 0, "end": 10_001}, headers=_auditor(workspace))
    assert too_long.status_code == 400 and "10000" in too_long.json()["error"]["message"]


def test_the_latest_witnessed_checkpoint_is_served(workspace: Workspace, client: TestClient) -> None:
    populate(workspace, client)
    ledger = workspace.runtime.ledger
    note = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()["note"]
    log_keys = [NoteVerifier.from_vkey(k.vkey) for k in ledger.public_keys("cn")]
    cosigned = LedgerService.cosign(note, generate_signer("regulator.example/witness"), log_keys=log_keys)
    ledger.record_cosigned("cn", cosigned)
    body = client.get("/v1/ledger/cn/checkpoint", headers=_auditor(workspace)).json()
    assert body["witnessed_note"] == cosigned and body["note"] in (note, cosigned)
