"""The CLI as an operator uses it: init, vehicles, ingest from a file, rules, residency, demo."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from tests.conftest import CN_VIN, now_ms

runner = CliRunner()


def _init(tmp_path: Path) -> Path:
    result = runner.invoke(app, ["init", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["config"])


def test_init_then_vehicle_add_and_revoke(tmp_path: Path) -> None:
    config = _init(tmp_path)
    added = runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config), "--json"])
    assert added.exit_code == 0, added.output
    token = json.loads(added.stdout)["token"]
    assert token.startswith("onv_cn_")
    again = runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
    assert again.exit_code == 2 and "--rotate" in again.output
    revoked = runner.invoke(app, ["vehicle", "revoke", "--vin", CN_VIN, "-c", str(config)])
    assert revoked.exit_code == 0
    twice = runner.invoke(app, ["vehicle", "revoke", "--vin", CN_VIN, "-c", str(config)])
    assert twice.exit_code == 2 and "no active vehicle" in twice.output
    # the VIN itself is written nowhere in the workspace
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CN_VIN.encode() not in path.read_bytes(), path


def test_bad_vin_and_market_are_refused_without_echoing_the_vin(tmp_path: Path) -> None:
    config = _init(tmp_path)
    bad = runner.invoke(app, ["vehicle", "add", "--vin", "LSVM0TEST0000000I", "--market", "CN", "-c", str(config)])
    assert bad.exit_code == 2 and "outside that alphabet" in bad.output and "LSVM0TEST0000000I" not in bad.output
    nowhere = runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "US", "-c", str(config)])
    assert nowhere.exit_code == 2 and "no region of jurisdiction US" in nowhere.output


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(tmp_path / "none.toml")]
    )
    assert result.exit_code == 2 and "onshore init" in result.output


def test_ingest_file_through_the_pipeline(tmp_path: Path) -> None:
    config = _init(tmp_path)
    runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
    data = tmp_path / "trip.ndjson"
    data.write_bytes(
        b"\n".join(
            orjson.dumps({"msg_id": f"m{i}", "ts": now_ms(), "signal": "VehicleSpeed", "value": i}) for i in range(3)
        )
    )
    result = runner.invoke(app, ["ingest", str(data), "--vin", CN_VIN, "--market", "CN", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text('[{"msg_id": "x"}]')
    refused = runner.invoke(app, ["ingest", str(bad), "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
    assert refused.exit_code == 2 and "Nothing from this batch was stored" in refused.output


def test_consent_grant_and_withdraw_from_cli(tmp_path: Path) -> None:
    config = _init(tmp_path)
    runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
    args = ["--vin", CN_VIN, "--market", "CN", "--purpose", "navigation", "-c", str(config)]
    granted = runner.invoke(app, ["consent", "grant", *args, "--level", "separate", "--validity", "7d"])
    assert granted.exit_code == 0, granted.output
    withdrawn = runner.invoke(app, ["consent", "withdraw", *args])
    assert withdrawn.exit_code == 0
    unknown = runner.invoke(
        app, ["consent", "grant", "--vin", CN_VIN, "--market", "CN", "--purpose", "nope", "-c", str(config)]
    )
    assert unknown.exit_code == 2 and "valid:" in unknown.output


def test_rules_classify_names_rule_and_article() -> None:
    result = runner.invoke(app, ["rules", "classify", "Location", "VendorThing", "--json"])
    assert result.exit_code == 0
    out = {o["signal"]: o for o in json.loads(result.stdout)}
    assert "sensitive_personal" in out["Location"]["categories"] and "Art. 3" in out["Location"]["source"]
    assert out["VendorThing"]["known"] is False and out["VendorThing"]["categories"] == ["personal"]


def test_invalid_rule_pack_is_refused_with_rule_and_reason(tmp_path: Path) -> None:
    pack = tmp_path / "broken.yaml"
    src = (Path(__file__).resolve().parents[1] / "src/onshore/rules/packs/cn-auto.yaml").read_text()
    pack.write_text(src.replace("categories: [general]", "categories: [generalish]", 1))
    result = runner.invoke(app, ["rules", "list", str(pack)])
    assert result.exit_code == 2
    assert "rule 'cn.sig." in result.output and "generalish" in result.output or "Input should be" in result.output


def test_residency_check_finds_planted_records(tmp_path: Path) -> None:
    config = _init(tmp_path)
    ok = runner.invoke(app, ["residency", "check", "-c", str(config), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    runtime = Runtime(load_settings(config, env={}))
    try:
        from onshore.model import RecordColumns
        from onshore.storage.records import insert_records

        with runtime.regions["eu"].store.transaction("plant") as conn:  # bypass the store's guard on purpose
            insert_records(
                conn,
                RecordColumns.from_rows(
                    [
                        {
                            "vehicle_ref": "x",
                            "msg_id": f"p{i}",
                            "ts_ms": 1,
                            "signal": "Location",
                            "value": "null",
                            "categories": "personal",
                            "tags": "",
                            "purpose": "navigation",
                            "rule_id": "r",
                            "origin": "CN",
                            "received_ms": 1,
                            "subject_ref": "x",
                        }
                        for i in range(5)
                    ]
                ),
                None,
            )
    finally:
        runtime.close()
    found = runner.invoke(app, ["residency", "check", "-c", str(config), "--json"])
    assert found.exit_code == 1
    assert json.loads(found.stdout)["findings"] == [
        {"region": "eu", "jurisdiction": "EU", "origin": "CN", "records": 5}
    ]


def test_demo_quick_json_exits_zero_with_counts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--quick", "--json", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["ingested"] > 0
    assert set(summary["by_region"]) == {"cn", "eu"} and all(v > 0 for v in summary["by_region"].values())
    assert summary["ingested"] == sum(summary["by_region"].values())
    assert summary["dropped_no_consent"] > 0 and summary["by_category"]["sensitive_personal"] > 0
    # camera frames: each camera vehicle sent three; the CN ones inside the sensitive zone were dropped
    assert summary["frames_sent"] == 12 and summary["frames_stored"] >= 4
    assert summary["frames_dropped"].get("sensitive_zone", 0) >= 1


def test_the_one_line_commands_answer_json_too(tmp_path: Path) -> None:
    config = _init(tmp_path)
    c = ["-c", str(config)]
    assert runner.invoke(app, ["gateway", "add", "fleet-cn", *c]).exit_code == 0
    added = json.loads(runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", *c, "--json"]).stdout)

    def as_json(*args: str) -> dict[str, object]:
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    assigned = as_json("vehicle", "assign", "--vin", CN_VIN, "--gateway", "fleet-cn", *c)
    assert assigned == {"vehicle_ref": added["vehicle_ref"], "region": "cn", "gateway": "fleet-cn"}
    revoked = as_json("vehicle", "revoke", "--vin", CN_VIN, *c)
    assert revoked == {"vehicle_ref": added["vehicle_ref"], "region": "cn", "revoked": True}
    balance = as_json("export", "balance", "--region", "cn", "--year", "2024", "--kind", "pi", "--people", "12", *c)
    assert balance == {"region": "cn", "year": 2024, "kind": "pi", "people": 12}
    witness = as_json("ledger", "keys", "generate-witness", "regulator.example/w", "--out", str(tmp_path / "w.key"))
    assert str(witness["vkey"]).startswith("regulator.example/w+")
    note = tmp_path / "cp.txt"
    assert runner.invoke(app, ["ledger", "checkpoint", "--region", "cn", "--out", str(note), *c]).exit_code == 0
    cosigned = as_json("ledger", "cosign", str(note), "--witness-key", str(tmp_path / "w.key"))
    assert cosigned["witness"] == "regulator.example/w" and str(cosigned["note"]).startswith(note.read_text())
    sample = as_json("vision", "sample", str(tmp_path / "s.jpg"))
    assert sample["out"] == str(tmp_path / "s.jpg") and (tmp_path / "s.jpg").read_bytes()[:2] == b"\xff\xd8"
