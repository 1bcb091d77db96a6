"""Releases and denials: bundles, counters, and ledger events whose inclusion proofs verify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from onshore.border.bundles import terms_digest, verify_bundle
from onshore.border.tables import border_provided
from onshore.errors import ConflictError, InputError
from onshore.ledger import MerkleLog, leaf_hash, verify_inclusion
from onshore.ledger.event_check import event_problems
from tests.border.helpers import Plant, basis, plant, request, subject, utc
from tests.conftest import Workspace

AT = utc("2024-06-15")


def _entry_and_proof(ws: Workspace, region: str, index: int) -> tuple[bytes, list[bytes], bytes, int]:
    log = MerkleLog(region)
    with ws.runtime.regions[region].store.read("test") as conn:
        size = log.tree_size(conn)
        return (
            log.entries(conn, index, index + 1)[0],
            log.inclusion_proof(conn, index, size),
            log.root(conn, size),
            size,
        )


def _assert_logged(ws: Workspace, region: str, index: int, kind: str) -> dict[str, object]:
    entry, proof, root, size = _entry_and_proof(ws, region, index)
    verify_inclusion(leaf_hash(entry), index, size, proof, root)  # raises ProofError if not included
    _, problems = event_problems(entry, region)
    assert problems == [], problems  # counts and digests only: no personal data
    event = orjson.loads(entry)
    assert event["kind"] == kind
    return event


def test_release_writes_bundle_counts_people_and_logs_a_verifiable_event(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("MilesToArrival", 20), Plant("Location", 20), Plant("VehicleSpeed", 20)], AT)
    basis(
        rt,
        "cn",
        "cn-scc-1",
        "standard_contract",
        conditions=[{"name": "coarsen_position", "params": {"cell_deg": 0.1}}],
    )
    result = rt.border.run(request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="officer", at=AT)
    assert result.released and result.decision.verdict == "allow"
    assert verify_bundle(tmp_path / "b") == []
    manifest = result.manifest
    assert manifest is not None and manifest["counts"]["records"] == 60
    table = pq.read_table(tmp_path / "b" / "data" / "records.parquet").to_pylist()
    assert len(table) == 60
    positions = [orjson.loads(r["value"]) for r in table if r["signal"] == "Location"]
    assert all(round(p["latitude"] * 20) % 2 == 1 for p in positions)  # snapped to 0.1° cell centres (x.x5)
    refs = {subject(i) for i in range(20)}
    assert not refs & {r["subject"] for r in table} and not refs & {r["vehicle"] for r in table}
    events = [_assert_logged(workspace, "cn", i, "provide_abroad") for i in result.ledger_indexes]
    assert {e["basis_id"] for e in events} == {None, "cn-scc-1"}
    assert all(e["digest"] == terms_digest(manifest) for e in events)  # the events commit to the manifest's terms
    assert sum(e["counts"]["records"] for e in events) == 60
    with rt.regions["cn"].store.read("test") as conn:
        kinds = conn.execute(border_provided.select()).mappings().all()
    assert {(k["kind"], k["basis_id"]) for k in kinds} == {("pi", None), ("sensitive", "cn-scc-1")}
    assert len({k["subject_ref"] for k in kinds if k["kind"] == "pi"}) == 20


def test_denial_is_logged_and_releases_nothing(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("DCChargingPower", 7)], AT)
    result = rt.border.run(request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="analyst", at=AT)
    assert not result.released and not (tmp_path / "b").exists()
    (index,) = result.ledger_indexes
    event = _assert_logged(workspace, "cn", index, "transfer_denied")
    assert event["counts"] == {"classes": 1, "records": 7, "people_at_least": 7}
    assert event["digest"] == result.decision.request.digest() and event["actor_role"] == "analyst"


def test_partial_release_logs_release_and_denial(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("DCChargingPower", 3), Plant("VehicleSpeed", 3)], AT)
    result = rt.border.run(request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="officer", at=AT)
    assert result.decision.verdict == "partial" and result.released
    kinds = [
        _assert_logged(workspace, "cn", i, k)["kind"]
        for i, k in zip(result.ledger_indexes, ("provide_abroad", "transfer_denied"), strict=True)
    ]
    assert kinds == ["provide_abroad", "transfer_denied"]
    rows = pq.read_table(tmp_path / "b" / "data" / "records.parquet").to_pylist()
    assert {r["signal"] for r in rows} == {"VehicleSpeed"}


def test_split_requests_do_not_evade_the_threshold(workspace: Workspace, tmp_path: Path) -> None:
    """2024 Provisions: two releases that each stay under 100,000 people add up (SCC Measures: no splitting)."""
    rt = workspace.runtime
    rt.border.import_provided("cn", [f"h{i:07d}" for i in range(99_400)], "pi", utc("2024-02-01"))
    plant(rt, "cn", [Plant("MilesToArrival", 300)], utc("2024-05-01"))
    plant(rt, "cn", [Plant("MilesToArrival", 300, first=300)], utc("2024-06-01"))
    first = request("cn", utc("2024-05-10"))
    done = rt.border.run(first, tmp_path / "1", actor_role="officer", at=utc("2024-05-10"))
    assert done.released and done.manifest is not None and done.manifest["counts"]["records"] == 300
    second = request("cn", utc("2024-06-10"), since="2024-05-20T00:00:00+08:00")
    decision = rt.border.decide(second, at=utc("2024-06-10"))
    (trip,) = decision.classes
    assert trip.decision == "deny"
    numbers = next(r.numbers for r in trip.reasons if r.rule == "cn.out.2024.pi")
    assert numbers["already"] == 99_700 and numbers["request"] == 300 and numbers["total"] == 100_000
    # asking again for the people already released does not add them
    earlier = request("cn", utc("2024-06-10"), since="2024-04-20T00:00:00+08:00", until="2024-05-20T00:00:00+08:00")
    again = rt.border.decide(earlier, at=utc("2024-06-10"))
    assert again.classes[0].decision == "transform"


def test_sensitive_zone_positions_never_leave_even_under_an_assessment(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("Location", 5, zone=True), Plant("Location", 5, first=5)], AT)
    basis(rt, "cn", "cn-sa-1", "security_assessment")
    result = rt.border.run(request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="officer", at=AT)
    assert result.manifest is not None
    by_class = result.manifest["counts"]["by_class"]
    zone_class = next(v for k, v in by_class.items() if "sensitive_area" in k)
    assert zone_class["suppressed_sensitive_positions"] == 5 and zone_class["records_released"] == 0
    rows = pq.read_table(tmp_path / "b" / "data" / "records.parquet").to_pylist()
    assert len(rows) == 5 and all("sensitive_area" not in r["tags"] for r in rows)


def test_aggregate_with_differential_privacy_releases_only_flow_statistics(
    workspace: Workspace, tmp_path: Path
) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("Location", 200)], AT)
    params = {"cell_deg": 0.5, "bucket_s": 86400, "epsilon": 1.0, "min_count": 5, "max_cells_per_vehicle": 1}
    aggregate = {"name": "aggregate", "params": params}
    basis(rt, "cn", "cn-scc-1", "standard_contract", conditions=[aggregate])
    result = rt.border.run(
        request("cn", AT + dt.timedelta(hours=1), format="ndjson"), tmp_path / "b", actor_role="officer", at=AT
    )
    assert verify_bundle(tmp_path / "b") == []
    flows = [orjson.loads(line) for line in (tmp_path / "b" / "data" / "flows.ndjson").read_bytes().splitlines()]
    assert len(flows) == 1 and 180 <= flows[0]["vehicles"] <= 220  # 200 vehicles, Laplace noise of scale 1
    assert not (tmp_path / "b" / "data" / "records.ndjson").exists()
    assert result.manifest is not None and result.manifest["counts"]["flow_rows"] == 1


def test_run_refuses_an_empty_selection_and_a_used_folder(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    with pytest.raises(InputError, match="nothing to release"):
        rt.border.run(request("cn", AT), tmp_path / "b", actor_role="officer", at=AT)
    plant(rt, "cn", [Plant("VehicleSpeed", 2)], AT - dt.timedelta(hours=1))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ConflictError, match="not empty"):
        rt.border.run(request("cn", AT), tmp_path / "used", actor_role="officer", at=AT)


def test_tampered_bundle_fails_verification(workspace: Workspace, tmp_path: Path) -> None:
    rt = workspace.runtime
    plant(rt, "cn", [Plant("VehicleSpeed", 3)], AT - dt.timedelta(hours=1))
    rt.border.run(request("cn", AT), tmp_path / "b", actor_role="officer", at=AT)
    data = tmp_path / "b" / "data" / "records.parquet"
    data.write_bytes(data.read_bytes() + b"x")
    assert any("SHA-256" in p for p in verify_bundle(tmp_path / "b"))


def test_ingested_encrypted_values_are_decrypted_for_release(workspace: Workspace, tmp_path: Path) -> None:
    """Through the real pipeline: personal values are encrypted at rest and leave decrypted and coarsened."""
    from tests.conftest import CN_VIN, record

    rt = workspace.runtime
    issued = rt.vehicles.add(CN_VIN, "CN")
    owner = rt.consents.subject_at_vehicle(issued.vehicle, None)
    rt.consents.grant(owner, "navigation", "separate", "90d", actor_role="officer")
    now = dt.datetime.now(dt.UTC)
    body = orjson.dumps([record("a", "Location", {"latitude": 31.2304, "longitude": 121.4737})])
    assert rt.ingest.ingest_body(issued.vehicle, body, "application/json").accepted == 1
    with rt.regions["cn"].store.read("test") as conn:
        stored = conn.execute(rt_records_value()).scalar()
    assert stored.startswith("e1:")  # encrypted at rest
    basis(rt, "cn", "cn-scc-1", "standard_contract", approved_on=now.date().isoformat())
    result = rt.border.run(request("cn", now + dt.timedelta(minutes=1)), tmp_path / "b", actor_role="officer")
    (row,) = pq.read_table(tmp_path / "b" / "data" / "records.parquet").to_pylist()
    assert orjson.loads(row["value"]) == {"latitude": 31.2304, "longitude": 121.4737}
    assert result.decision.classes[0].basis_id == "cn-scc-1"


def rt_records_value():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from onshore.storage.schema import records

    return select(records.c.value)


def test_releases_and_denials_pass_onshore_ledger_verify(workspace: Workspace, tmp_path: Path) -> None:
    """The auditor's check of the whole region log (signed checkpoint, every event re-hashed) accepts them."""
    import base64

    from typer.testing import CliRunner

    from onshore.cli import app

    rt = workspace.runtime
    plant(rt, "cn", [Plant("DCChargingPower", 3), Plant("VehicleSpeed", 3)], AT)
    result = rt.border.run(request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="officer", at=AT)
    runner, config = CliRunner(), str(workspace.config)
    vkeys = runner.invoke(app, ["ledger", "keys", "list", "-r", "cn", "-c", config, "--vkeys"])
    assert vkeys.exit_code == 0, vkeys.output
    (tmp_path / "cn.vkey").write_text(vkeys.stdout)
    exported = runner.invoke(app, ["ledger", "export", str(tmp_path / "log.json"), "-r", "cn", "-c", config])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(
        app, ["ledger", "verify", "--key", str(tmp_path / "cn.vkey"), "--bundle", str(tmp_path / "log.json"), "--json"]
    )
    verdict = orjson.loads(verified.stdout)
    assert verified.exit_code == 0 and verdict["ok"], verdict["failures"]
    assert {"provide_abroad", "transfer_denied"} <= set(verdict["events_by_kind"])
    entries = orjson.loads((tmp_path / "log.json").read_bytes())["entries"]
    manifest = result.manifest
    assert manifest is not None
    for event in manifest["ledger"]["events"]:  # the bundle's events are the log's, byte for byte
        assert base64.b64decode(entries[event["index"]]) == base64.b64decode(event["entry"])
