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

# The exit codes of every checking command (residency check, db status, export verify, ledger verify):
EXIT_OK = 0  # checked, nothing wrong
EXIT_FOUND = 1  # checked, and a violation or mismatch was found
EXIT_USAGE = 2  # the command, its arguments or the configuration are wrong
EXIT_UNCHECKED = 3  # could not check: a store or file could not be read (unreachable database, unreadable bundle)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="ONSHORE_CONFIG", help="path to onshore.toml (default ./onshore.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")]
EnvOption = Annotated[
    bool,
    typer.Option("--env", help='print what was issued as shell variables, for eval "$(onshore ... --env)"'),
]


def print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")


def print_env(variables: dict[str, str]) -> None:
    """``export NAME='value'`` lines a POSIX shell can eval (names upper-cased, ``-`` as ``_``)."""
    for name, value in variables.items():
        quoted = "'" + value.replace("'", "'\\''") + "'"
        sys.stdout.write(f"export {name.upper().replace('-', '_')}={quoted}\n")


@contextmanager
def cli_errors(usage_exit: int = EXIT_USAGE, *, check: bool = False) -> Iterator[None]:
    """Turn an OnshoreError into a one-line message: exit ``usage_exit`` for user errors, 1 for internal ones.

    Args:
        check: a checking command, whose exit 1 means "violation found": an internal error (a store that cannot
            be reached or read) exits ``EXIT_UNCHECKED`` instead, so a script tells the two apart.
    """
    try:
        yield
    except OnshoreError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        user_error = exc.status < 500 or exc.code in ("config_invalid", "rule_pack_invalid", "schema_version")
        raise typer.Exit(usage_exit if user_error else EXIT_UNCHECKED if check else 1) from None


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
    """End a checking command: ``payload`` as JSON, or each problem in red, or ``ok_message``; exit 1 on problems
    (`EXIT_FOUND`)."""
    if json_out:
        print_json(payload)
    elif problems:
        for problem in problems:
            err_console.print(f"[red]{problem}[/]", highlight=False)
    else:
        console.print(ok_message, highlight=False)
    if problems:
        raise typer.Exit(EXIT_FOUND)
