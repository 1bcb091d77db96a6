"""Checking commands tell "violation found" (1) from "could not check" (3) and from a usage error (2)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from onshore.cli import app
from onshore.cli_support import EXIT_FOUND, EXIT_OK, EXIT_UNCHECKED, EXIT_USAGE


def _init(folder: Path) -> Path:
    result = CliRunner().invoke(app, ["init", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder / "onshore.toml"


def _residency(config: Path) -> int:
    return CliRunner().invoke(app, ["residency", "check", "-c", str(config)], catch_exceptions=False).exit_code


def test_residency_check_exit_codes(tmp_path: Path) -> None:
    assert len({EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_UNCHECKED}) == 4
    config = _init(tmp_path / "ok")
    assert _residency(config) == EXIT_OK
    # a record store nobody listens on: the check could not run, which is not a violation
    down = _init(tmp_path / "down")
    text = down.read_text(encoding="utf-8")
    sqlite_cn = 'record_store = "sqlite:///onshore-data/cn/records.sqlite"'
    assert sqlite_cn in text
    down.write_text(
        text.replace(sqlite_cn, 'record_store = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"'),
        encoding="utf-8",
    )
    assert _residency(down) == EXIT_UNCHECKED
    assert _residency(tmp_path / "missing.toml") == EXIT_USAGE
