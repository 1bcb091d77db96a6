"""What every `onshore` command group shares: consoles, common options, error handling, the runtime."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from onshore.errors import OnshoreError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="ONSHORE_CONFIG", help="path to onshore.toml (default ./onshore.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")]


def print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")


@contextmanager
def cli_errors(usage_exit: int = 2) -> Iterator[None]:
    """Turn an OnshoreError into a one-line message: exit ``usage_exit`` for user errors, 1 for internal ones."""
    try:
        yield
    except OnshoreError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        user_error = exc.status < 500 or exc.code in ("config_invalid", "rule_pack_invalid", "schema_version")
        raise typer.Exit(usage_exit if user_error else 1) from None


def with_runtime(config: Path | None, fn: Callable[[Any], T]) -> T:
    """Run ``fn(runtime)`` over a runtime built from ``config``, closing it afterwards."""
    from onshore.config import load_settings
    from onshore.runtime import Runtime

    runtime = Runtime(load_settings(config))
    try:
        return fn(runtime)
    finally:
        runtime.close()


def finish_check(json_out: bool, payload: dict[str, Any], problems: list[str], ok_message: str) -> None:
    """End a checking command: ``payload`` as JSON, or each problem in red, or ``ok_message``; exit 1 on problems."""
    if json_out:
        print_json(payload)
    elif problems:
        for problem in problems:
            err_console.print(f"[red]{problem}[/]", highlight=False)
    else:
        console.print(ok_message, highlight=False)
    if problems:
        raise typer.Exit(1)
