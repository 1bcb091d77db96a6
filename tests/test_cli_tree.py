"""Every command of the CLI answers --help, and `onshore config` (plain and --json) runs, without a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import settings_documentation


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (typer's groups are not click.Group subclasses)
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _command(path: tuple[str, ...]) -> Any:
    """The click command (or group) at ``path``."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def test_the_tree_is_walked() -> None:
    # a command tree of a dozen groups: if the walk found only the root, the test below would prove nothing
    assert len(COMMANDS) > 30
    assert ("config",) in COMMANDS and ("ledger", "verify") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "onshore")
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "Usage:" in result.output


def test_config_prints_every_setting_with_and_without_json() -> None:
    docs = settings_documentation()
    plain = CliRunner().invoke(app, ["config"], catch_exceptions=False, terminal_width=200)
    assert plain.exit_code == 0, plain.output
    assert all(key in plain.output for key in docs)
    as_json = CliRunner().invoke(app, ["config", "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == docs
    assert any(key.startswith("frames.") for key in docs)


def test_version() -> None:
    import onshore

    result = CliRunner().invoke(app, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.strip() == f"onshore {onshore.__version__}"


def test_one_grammar_people_and_vehicles_are_named_by_options() -> None:
    """A vehicle is `--vin` (with `--market` where needed), a person `--subject`, a region `--region`, in every
    command; positional arguments are only the files, ids and names a command acts on."""
    offenders = []
    for path in COMMANDS:
        for param in getattr(_command(path), "params", []):
            if type(param).__name__.endswith("Argument") and param.name in {"vin", "subject", "region", "market"}:
                offenders.append(f"onshore {' '.join(path)} takes {param.name} positionally")
    assert offenders == []


# Commands without --json, each with the reason: they print no data, only logs while they run.
NO_JSON = {
    ("serve",): "runs the API server until stopped; it writes logs, not a result",
    ("mqtt",): "runs the MQTT subscriber until stopped; it writes logs, not a result",
}


def test_every_command_that_prints_data_has_json() -> None:
    lacking = []
    for path in COMMANDS:
        command = _command(path)
        if hasattr(command, "commands"):
            continue  # a group prints its help only
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if "--json" not in options and path not in NO_JSON:
            lacking.append(" ".join(path))
    assert lacking == [], f"add --json (cli_support.JsonOption) or a reason in NO_JSON: {lacking}"
    assert all(path in COMMANDS for path in NO_JSON)  # no stale exemption
