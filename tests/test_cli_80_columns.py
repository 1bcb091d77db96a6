"""Every command that prints a table stays readable at 80 columns: nothing is cut with "…", and every id, date and
name its --json payload holds (the thing asked about) appears whole in the plain output.

One workspace is built once for the module (a small fleet planted by the real rule pack, a gateway, a consent, a
register entry, a basis, a released and a denied export), then each command runs twice: with --json, to learn
the values it must show, and plain with COLUMNS=80. A value folded across lines by the stacked layout still counts
as whole when the output's whitespace is removed; a value cut with an ellipsis does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from onshore import cli_support
from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from tests.border.helpers import Plant, plant
from tests.conftest import CN_VIN

NOW = dt.datetime.now(dt.UTC)
LONG_SIGNAL = "Vehicle.Cabin.Infotainment.Navigation.DestinationSet.Latitude"
SIGNALS = ("DCChargingPower", "VehicleSpeed", "Location", LONG_SIGNAL, "Vehicle.Driver.HeartRate")
runner = CliRunner()


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared consoles measure COLUMNS on every print unless a width was fixed when they were made."""
    monkeypatch.setenv("COLUMNS", "80")
    for console in (cli_support.console, cli_support.err_console):
        monkeypatch.setattr(console, "_width", None)


def _run(*args: str) -> Any:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80"}, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cli80")
    config = json.loads(runner.invoke(app, ["init", str(folder / "ws"), "--json"]).stdout)["config"]
    c = ["-c", config]
    assert runner.invoke(app, ["gateway", "add", "fleet-cn", *c]).exit_code == 0
    assert runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "--gateway", "fleet-cn", *c])
    grant = ["consent", "grant", "--vin", CN_VIN, "--market", "CN", "--purpose", "navigation", "--validity", "90d"]
    assert runner.invoke(app, [*grant, *c]).exit_code == 0
    entry = ["register", "add", "incident", "--set", "title=a seal found broken", "--set", "occurred_on=2026-03-02"]
    entry += ["--set", "categories=personal,important", "--set", "people_affected=3", *c]
    assert runner.invoke(app, entry).exit_code == 0
    runtime = Runtime(load_settings(Path(config), env={}))
    try:
        plant(runtime, "cn", [Plant(s, 3) for s in SIGNALS], NOW - dt.timedelta(hours=1))
    finally:
        runtime.close()
    basis = folder / "basis.yaml"
    basis.write_text(
        "id: cn-sa-2026-000123\nregion: cn\nroute: security_assessment\nreference: CAC-2026-0815\n"
        "scope:\n  categories: [important, personal, sensitive_personal]\n  purposes: [diagnostics]\n"
        "  recipient: acme-gmbh\n  destinations: [DE]\n"
    )
    request = folder / "request.yaml"
    request.write_text(
        "region: cn\ndestination: DE\nrecipient: acme-gmbh\npurpose: diagnostics\nrequester: analyst\n"
        f"since: {(NOW - dt.timedelta(days=1)).isoformat()}\nuntil: {(NOW + dt.timedelta(minutes=5)).isoformat()}\n"
        "fleet: all\n"
    )
    denied = runner.invoke(app, ["export", "run", str(request), "--out", str(folder / "b0"), *c])  # no basis yet
    assert denied.exit_code == 0, denied.output  # partial: general data leaves, the rest is denied
    runner.invoke(app, ["bases", "add", str(basis), *c])
    runner.invoke(app, ["bases", "approve", "cn-sa-2026-000123", "--on", NOW.date().isoformat(), *c])
    assert runner.invoke(app, ["export", "run", str(request), "--out", str(folder / "b1"), *c]).exit_code == 0
    bundle = folder / "cn-ledger.json"
    assert runner.invoke(app, ["ledger", "export", str(bundle), "--region", "cn", *c]).exit_code == 0
    vkeys = folder / "cn.vkey"
    vkeys.write_text(runner.invoke(app, ["ledger", "keys", "list", "--region", "cn", "--vkeys", *c]).stdout)
    data = folder / "trip.ndjson"
    data.write_text(
        json.dumps({"msg_id": "m1", "ts": int(NOW.timestamp() * 1000), "signal": "VehicleSpeed", "value": 3})
    )
    yield {"c": c, "request": str(request), "bundle": str(bundle), "vkeys": str(vkeys), "data": str(data)}


def _values(payload: Any, keys: set[str]) -> list[str]:
    """Every string or number under one of ``keys``, anywhere in ``payload``."""
    found: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in keys and isinstance(value, str | int) and not isinstance(value, bool):
                found.append(str(value))
            elif key in keys and isinstance(value, list):
                found += [str(v) for v in value if isinstance(v, str | int)]
            else:
                found += _values(value, keys)
    elif isinstance(payload, list):
        for item in payload:
            found += _values(item, keys)
    return found


def _decision_values(decision: dict[str, Any]) -> list[str]:
    """A decision shows each class's rule, basis and transforms, and the rule of every reason that failed; the
    conditions met are counted, not listed (--all lists them)."""
    found = []
    for c in decision["classes"]:
        found += [c["rule"], *(t["name"] for t in c["transforms"]), *([c["basis"]] if c["basis"] else [])]
        found += [r["rule"] for r in c["reasons"] if not r["met"]]
    return found


# (command, the keys of its --json payload whose values must appear whole); {ws} fields are filled in
COMMANDS: list[tuple[str, set[str]]] = [
    ("config", {"gateway.trusted_proxies", "frames.max_bytes"}),  # keys of the payload: checked below
    ("rules list", {"id"}),
    ("rules classify DCChargingPower " + LONG_SIGNAL, {"signal", "rule", "categories", "tags"}),
    ("vehicle list {c}", {"vehicle_ref", "region", "gateway"}),
    ("gateway list {c}", {"name"}),
    ("consent list --vin " + CN_VIN + " --market CN {c}", {"purpose", "granted", "expires", "subject"}),
    ("keys status {c}", {"backend"}),
    ("db status {c}", {"head"}),
    ("bases list {c}", {"id", "route", "approved_on", "expires_on", "reapply_from", "recipient"}),
    ("bases show cn-sa-2026-000123 {c}", {"id", "route", "approved_on", "expires_on", "reapply_from"}),
    ("export decide {request} {c}", {"decision shown"}),  # its classes and what failed: see _decision_values
    ("export list --region cn {c}", {"transfer_id", "date", "purpose", "destination", "recipient"}),
    ("register list incident {c}", {"id", "occurred_on", "categories"}),
    ("register show incident 1 {c}", {"occurred_on", "title", "categories"}),
    ("retention run {c}", {"rule_id"}),
    ("ledger keys list --region cn {c}", {"vkey", "version"}),
    ("ledger verify --bundle {bundle} --key {vkeys}", {"root_hash", "origin"}),
    ("ingest {data} --vin " + CN_VIN + " --market CN {c}", {"region", "accepted"}),
]


@pytest.mark.parametrize(("command", "keys"), COMMANDS, ids=[c.split(" {")[0] for c, _ in COMMANDS])
def test_a_table_keeps_every_id_whole_at_80_columns(ws: dict[str, Any], command: str, keys: set[str]) -> None:
    words = command.format(c=" ".join(ws["c"]), **{k: v for k, v in ws.items() if k != "c"}).split()
    as_json = json.loads(_run(*words, "--json").stdout)
    plain = _run(*words).stdout
    assert "…" not in plain, plain
    assert max(len(line) for line in plain.splitlines()) <= 80, plain
    if words[0] == "config":
        expected = list(as_json)
    elif keys == {"decision shown"}:
        expected = _decision_values(as_json)
    else:
        expected = _values(as_json, keys)
    assert expected, f"{command}: its --json payload holds none of {keys}"
    squeezed = re.sub(r"\s+", "", plain)
    missing = [v for v in expected if re.sub(r"\s+", "", v) not in squeezed]
    assert missing == [], f"not shown whole: {missing}\n{plain}"


def test_init_prints_every_token_whole_at_80_columns(tmp_path: Path) -> None:
    plain = _run("init", str(tmp_path / "a")).stdout
    assert "…" not in plain and max(len(line) for line in plain.splitlines()) <= 80, plain
    digests = re.findall(r'sha256 = "([0-9a-f]{64})"', (tmp_path / "a" / "onshore.toml").read_text())
    shown = {hashlib.sha256(t.encode()).hexdigest() for t in re.findall(r"\bons_[A-Za-z0-9_\-]+", plain)}
    assert len(digests) >= 3 and set(digests) == shown, plain  # each token printed whole, as the config hashed it
