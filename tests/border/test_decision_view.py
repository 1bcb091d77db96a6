"""A denial shows what failed first: the failed reasons, each set once over the classes it denied, then the
conditions met counted, not listed (`--all` lists them, failed first in every class)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from onshore.border.decision_view import decision_view
from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from tests.border.helpers import Plant, plant

runner = CliRunner()
NOW = dt.datetime.now(dt.UTC)


def _reason(n: int, met: bool) -> dict[str, Any]:
    return {"rule": f"cn.out.rule-{n}", "article": f"Art. {n}", "text": f"condition {n}", "met": met}


def _class(n: int, decision: str, reasons: list[dict[str, Any]]) -> dict[str, Any]:
    named = {"class": f"cn.sig.c{n}|personal|", "rule": f"cn.sig.c{n}", "categories": ["personal"], "tags": []}
    return {
        **named,
        "records": 10,
        "people": 2,
        "decision": decision,
        "basis": None,
        "transforms": [],
        "reasons": reasons,
    }


def _render(decision: dict[str, Any], **kwargs: Any) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(decision_view(decision, **kwargs))
    return console.export_text()


def test_a_deny_among_300_conditions_met_prints_the_failures_and_a_count() -> None:
    # 60 classes leave, 5 conditions met each; one class is denied by two failures (after 3 conditions it met)
    classes = [_class(n, "allow", [_reason(1000 + 5 * n + k, True) for k in range(5)]) for n in range(60)]
    denied = [_reason(1, True), _reason(2, True), _reason(3, True), _reason(7, False), _reason(8, False)]
    classes.insert(30, _class(99, "deny", denied))
    decision = {"verdict": "partial", "pack": "cn-auto test", "date": "2026-05-01", "classes": classes}
    text = _render(decision)
    lines = text.splitlines()
    assert len(lines) < 12, text
    failed = [i for i, line in enumerate(lines) if line.startswith("failed")]
    assert [lines[i].split()[1] for i in failed] == ["cn.out.rule-7", "cn.out.rule-8"], text
    assert "cn.sig.c99" in text and "cn.out.rule-1 (Art. 1)" not in text  # what the denied class met: counted
    assert "and 3 condition(s) of it met" in text
    assert "would leave: 60 class(es), 600 records" in text
    assert "and 300 condition(s) met" in text and "--all" in text
    assert failed[0] < min(i for i, line in enumerate(lines) if "would leave" in line)

    everything = _render(decision, show_all=True).splitlines()
    assert len(everything) > 300  # 61 classes, 305 reasons
    start = next(i for i, line in enumerate(everything) if "cn.sig.c99" in line)
    block = everything[start : start + 6]
    assert [line.split()[0] for line in block[1:]] == ["failed", "failed", "met", "met", "met"], block


def test_the_gate_marks_what_failed_and_the_cli_shows_it_first(tmp_path: Path) -> None:
    config = json.loads(runner.invoke(app, ["init", str(tmp_path / "ws"), "--json"]).stdout)["config"]
    runtime = Runtime(load_settings(Path(config), env={}))
    try:
        signals = [s for rule in runtime.rulebook.for_jurisdiction("CN").pack.signals for s in rule.signals][:40]
        plant(runtime, "cn", [Plant(s, 2) for s in signals] + [Plant("Location", 3, zone=True)], NOW)
    finally:
        runtime.close()
    request = tmp_path / "request.yaml"
    request.write_text(
        "region: cn\ndestination: DE\nrecipient: acme-gmbh\npurpose: diagnostics\nrequester: analyst\n"
        f"since: {(NOW - dt.timedelta(days=1)).isoformat()}\nuntil: {(NOW + dt.timedelta(minutes=5)).isoformat()}\n"
        "fleet: all\n"
    )
    c = ["-c", config]
    decision = json.loads(runner.invoke(app, ["export", "decide", str(request), *c, "--json"]).stdout)
    reasons = [r for cl in decision["classes"] for r in cl["reasons"]]
    assert any(r["met"] for r in reasons) and any(not r["met"] for r in reasons)
    for cl in decision["classes"]:  # a class that leaves met every condition; a denied one failed at least one
        assert any(not r["met"] for r in cl["reasons"]) == (cl["decision"] == "deny"), cl

    plain = runner.invoke(app, ["export", "decide", str(request), *c], env={"COLUMNS": "80"}).stdout
    full = runner.invoke(app, ["export", "decide", str(request), *c, "--all"], env={"COLUMNS": "80"}).stdout
    assert len(plain.splitlines()) * 3 < len(full.splitlines()), plain
    squeezed = re.sub(r"\s+", "", plain)
    for r in reasons:
        shown = re.sub(r"\s+", "", f"{r['rule']} ({r['article']}): {r['text']}") in squeezed
        assert shown == (not r["met"]), r  # every failure, and none of the conditions met, is printed

    ran = runner.invoke(app, ["export", "run", str(request), "--out", str(tmp_path / "b"), *c, "--json"])
    listed = json.loads(runner.invoke(app, ["export", "list", *c, "--json"]).stdout)["transfers"]
    assert ran.exit_code == 0 and len(listed) == 1
    failed = {f"{r['rule']} ({r['article']}): {r['text']}" for r in reasons if not r["met"]}
    assert set(listed[0]["denied_reasons"]) == failed and listed[0]["met_in_denied"] > 0
