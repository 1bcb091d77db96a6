"""Every `onshore …` command shown in a shell block of the README and docs/ parses against the real CLI.

The tour runs for real (tests/test_docs_run.py); the other examples name deployments that do not exist here
(hosts, bundles, key files), so they are parsed, not run: the command path must exist and every option and
argument must be accepted by click — a renamed option (`--days` for `--validity`), a positional VIN where the
command takes `--vin`, or a command that is gone fails this test. Only "the file does not exist" is let through.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from onshore.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _examples(path: Path) -> list[tuple[str, int, str]]:
    """(file, line, command) for each `onshore` command line in the file's ```sh / ```console blocks."""
    found: list[tuple[str, int, str]] = []
    in_block = False
    pending = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("```"):
            in_block = not in_block and raw.strip() in ("```sh", "```console", "```bash")
            continue
        if not in_block:
            continue
        line = pending + raw.strip().removeprefix("$ ")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        for part in re.split(r"&&|\|\||;|\|", line):
            part = part.strip()
            part = re.sub(r"^eval \"\$\((.*)\)\"$", r"\1", part)
            if part.startswith("onshore "):
                found.append((str(path.relative_to(ROOT)), number, part))
    return found


EXAMPLES = [e for doc in DOCS for e in _examples(doc)]


def _words(command: str) -> list[str]:
    """The command's arguments after `onshore`: comments, redirections and a trailing ``&`` removed."""
    command = re.sub(r"\s#.*$", "", command)
    command = re.sub(r"\s[12]?>>?\s*\S+", " ", command).strip().removesuffix("&")
    return shlex.split(command)[1:]


def _parse(words: list[str]) -> None:
    command: Any = typer.main.get_command(app)
    name = "onshore"
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name, words = words[0], words[1:]
        assert name in command.commands, f"no command {name!r}"
        command = command.commands[name]
    ctx = command.make_context(name, list(words), resilient_parsing=False)
    ctx.close()


def test_examples_are_found() -> None:
    assert len(EXAMPLES) > 30
    assert any("consent grant" in c for _, _, c in EXAMPLES)


@pytest.mark.parametrize("where, line, command", EXAMPLES, ids=[f"{f}:{n}" for f, n, _ in EXAMPLES])
def test_every_onshore_example_parses(where: str, line: int, command: str) -> None:
    try:
        _parse(_words(command))
    except Exception as exc:  # typer vendors click: its exception classes are told apart by name
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "Exit" in kinds:
            return  # --help, --version
        if "UsageError" not in kinds:
            raise
        message = exc.format_message()  # type: ignore[attr-defined]
        if "does not exist" not in message:
            pytest.fail(f"{where}:{line}: `{command}`: {message}")
