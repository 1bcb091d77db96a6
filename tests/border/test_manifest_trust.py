"""An auditor can trust a bundle's manifest: its terms are what the ledger committed to, and its proofs are against
a head the log signed. Editing the purpose, the destination, a basis, a class decision or a count fails
`onshore export verify`; an untouched bundle passes, with and without the log's key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from onshore.border.bundles import verify_bundle
from onshore.cli import app
from onshore.ledger.checkpoint import generate_signer
from onshore.ledger.verify import parse_vkeys
from tests.border.helpers import Plant, basis, plant, request, utc
from tests.conftest import Workspace

AT = utc("2024-06-15")


@pytest.fixture
def bundle(workspace: Workspace, tmp_path: Path) -> Path:
    rt = workspace.runtime
    basis(rt, "cn", "cn-scc-1", "standard_contract")
    plant(rt, "cn", [Plant("VehicleSpeed", 3), Plant("MilesToArrival", 4)], AT - dt.timedelta(hours=1))
    result = rt.border.run(request("cn", AT), tmp_path / "b", actor_role="officer", at=AT)
    assert result.released
    return tmp_path / "b"


def _log_keys(workspace: Workspace) -> list[Any]:
    return parse_vkeys([k.vkey for k in workspace.runtime.ledger.public_keys("cn")])


def _edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    change(manifest)
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def test_an_untouched_bundle_verifies_with_and_without_the_logs_key(workspace: Workspace, bundle: Path) -> None:
    assert verify_bundle(bundle) == []
    assert verify_bundle(bundle, _log_keys(workspace)) == []
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    assert manifest["format"] == "onshore-export/2"
    assert manifest["ledger"]["checkpoint"]["note"].splitlines()[1] == str(manifest["ledger"]["tree_size"])


def _set_purpose(m: dict[str, Any]) -> None:
    m["request"]["purpose"] = "marketing"


def _set_destination(m: dict[str, Any]) -> None:
    m["request"]["destination"] = "US"


def _forge_basis(m: dict[str, Any]) -> None:
    m["bases"] = [*m["bases"], {"id": "forged-assessment", "kind": "security_assessment"}]


def _flip_decision(m: dict[str, Any]) -> None:
    first = next(iter(m["counts"]["by_class"]))
    m["counts"]["by_class"][first]["decision"] = (
        "allow" if m["counts"]["by_class"][first]["decision"] != "allow" else "deny"
    )


def _lower_count(m: dict[str, Any]) -> None:
    m["counts"]["records"] -= 1


def _rewrite_decision_reasons(m: dict[str, Any]) -> None:
    m["decision"]["classes"][0]["reasons"] = []


@pytest.mark.parametrize(
    "change",
    [_set_purpose, _set_destination, _forge_basis, _flip_decision, _lower_count, _rewrite_decision_reasons],
)
def test_an_edited_term_fails_verification(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _edit(bundle, change)
    problems = verify_bundle(bundle)
    assert any("terms were changed" in p for p in problems), problems


def test_key_order_and_indentation_are_not_edits(bundle: Path) -> None:
    path = bundle / "manifest.json"
    path.write_bytes(orjson.dumps(orjson.loads(path.read_bytes())))  # compact, keys in another order
    assert verify_bundle(bundle) == []


def test_the_checkpoint_must_be_signed_by_the_logs_key_and_name_the_proofs_head(
    workspace: Workspace, bundle: Path
) -> None:
    other = parse_vkeys([generate_signer(workspace.runtime.ledger.origin("cn")).verifier.vkey])
    assert any("does not verify" in p or "no valid signature" in p for p in verify_bundle(bundle, other))

    def swap_checkpoint(m: dict[str, Any]) -> None:  # a genuine checkpoint of another head
        m["ledger"]["checkpoint"]["note"] = workspace.runtime.ledger.checkpoint_at("cn", 1).note

    _edit(bundle, swap_checkpoint)
    assert verify_bundle(bundle) == []  # without the key the checkpoint is not looked at
    assert any("tree head" in p for p in verify_bundle(bundle, _log_keys(workspace)))


def test_export_verify_cli_takes_the_logs_key(workspace: Workspace, bundle: Path, tmp_path: Path) -> None:
    vkey = tmp_path / "cn.vkey"
    vkey.write_text("\n".join(k.vkey for k in workspace.runtime.ledger.public_keys("cn")) + "\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["export", "verify", str(bundle), "--key", str(vkey), "--json"])
    assert ok.exit_code == 0, ok.output
    _edit(bundle, _set_destination)
    bad = runner.invoke(app, ["export", "verify", str(bundle), "--key", str(vkey), "--json"])
    assert bad.exit_code == 1 and not orjson.loads(bad.stdout)["ok"]
    garbage = runner.invoke(app, ["export", "verify", str(bundle), "--key", "not+a+key"])
    assert garbage.exit_code == 2
