"""`onshore bases …` and `onshore export …` as the officer uses them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from tests.border.helpers import Plant, plant

runner = CliRunner()
NOW = dt.datetime.now(dt.UTC)


def _init(tmp_path: Path) -> Path:
    result = runner.invoke(app, ["init", str(tmp_path / "ws"), "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["config"])


def _files(tmp_path: Path) -> tuple[Path, Path]:
    basis = tmp_path / "basis.yaml"
    basis.write_text(
        "id: cn-sa-1\nregion: cn\nroute: security_assessment\nreference: CAC-2024-0815\n"
        "scope:\n  categories: [important, personal, sensitive_personal]\n  purposes: [diagnostics]\n"
        "  recipient: acme-gmbh\n  destinations: [DE]\n"
    )
    request = tmp_path / "request.yaml"
    request.write_text(
        "region: cn\ndestination: DE\nrecipient: acme-gmbh\npurpose: diagnostics\nrequester: analyst\n"
        f"since: {(NOW - dt.timedelta(days=1)).isoformat()}\nuntil: {(NOW + dt.timedelta(minutes=5)).isoformat()}\n"
        "fleet: all\n"
    )
    return basis, request


def test_bases_and_export_commands_end_to_end(tmp_path: Path) -> None:
    config = _init(tmp_path)
    basis, request = _files(tmp_path)
    c = ["-c", str(config)]
    runtime = Runtime(load_settings(config, env={}))
    try:
        plant(runtime, "cn", [Plant("DCChargingPower", 3), Plant("VehicleSpeed", 3)], NOW - dt.timedelta(hours=1))
    finally:
        runtime.close()

    decided = runner.invoke(app, ["export", "decide", str(request), *c, "--json"])
    assert decided.exit_code == 1, decided.output  # important data without an assessment: a class is denied
    classes = {x["rule"]: x for x in json.loads(decided.stdout)["classes"]}
    assert classes["cn.sig.charging-network"]["decision"] == "deny"
    assert classes["cn.sig.charging-network"]["reasons"][0]["article"] == "auto-provisions-2021 Art. 11"

    added = runner.invoke(app, ["bases", "add", str(basis), *c, "--json"])
    assert added.exit_code == 0, added.output and json.loads(added.stdout)["status"] == "draft"
    today = NOW.date().isoformat()
    approved = runner.invoke(app, ["bases", "approve", "cn-sa-1", "--on", today, *c, "--json"])
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["validity_rule"] == "cn.out.validity-2024"
    listed = runner.invoke(app, ["bases", "list", *c, "--json"])
    assert listed.exit_code == 0 and [b["id"] for b in json.loads(listed.stdout)["bases"]] == ["cn-sa-1"]
    assert runner.invoke(app, ["bases", "list", *c]).exit_code == 0  # the table
    shown = runner.invoke(app, ["bases", "show", "cn-sa-1", *c])
    assert shown.exit_code == 0 and "working days to expiry" in shown.output.replace("\n", " ")

    allowed = runner.invoke(app, ["export", "decide", str(request), *c])
    assert allowed.exit_code == 0, allowed.output
    out = tmp_path / "bundle"
    ran = runner.invoke(app, ["export", "run", str(request), "--out", str(out), "--archive", *c, "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["released"] and result["records"] == 6 and Path(result["archive"]).is_file()
    verified = runner.invoke(app, ["export", "verify", str(out), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout) == {"ok": True, "problems": []}

    revoked = runner.invoke(app, ["bases", "revoke", "cn-sa-1", *c])
    assert revoked.exit_code == 0
    denied = runner.invoke(app, ["export", "run", str(request), "--out", str(tmp_path / "b2"), *c])
    assert denied.exit_code == 0, denied.output  # general data still leaves; the important class is refused
    assert "partial" in denied.output


def test_bad_files_and_ids_are_usage_errors(tmp_path: Path) -> None:
    config = _init(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: X\nregion: cn\n")
    result = runner.invoke(app, ["bases", "add", str(broken), "-c", str(config)])
    assert result.exit_code == 2 and "basis" in result.output
    missing = runner.invoke(app, ["bases", "approve", "nope", "-c", str(config)])
    assert missing.exit_code == 2 and "no transfer basis 'nope'" in missing.output
    bad_date = runner.invoke(app, ["bases", "list", "--date", "soon", "-c", str(config)])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
