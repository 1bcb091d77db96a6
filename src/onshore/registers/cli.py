"""`onshore register …`: the officer's registers (rights requests, incidents, complaints, domestic provision)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, print_json, with_runtime
from onshore.cli_tables import data_table, fields, plain
from onshore.documents import load_yaml
from onshore.errors import InputError

register_app = typer.Typer(
    help="Registers the reports are written from: rights_request, incident, complaint, provision (officer).",
    no_args_is_help=True,
)
RegisterArg = Annotated[str, typer.Argument(help="rights_request, incident, complaint or provision")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="field=value (repeatable; lists comma-separated)")]
_LISTS = {"categories"}
_MAX_FILE = 1024 * 1024


def _fields(file: Path | None, sets: list[str] | None) -> dict[str, Any]:
    """The fields of an entry from a YAML/JSON file and ``--set field=value`` options (these win)."""
    data: dict[str, Any] = {}
    if file is not None:
        try:
            if file.stat().st_size > _MAX_FILE:
                raise InputError(f"{file} is larger than 1 MiB")
            loaded = load_yaml(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read {file} ({exc.__class__.__name__})") from exc
        except UnicodeDecodeError:
            raise InputError(f"{file} is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{file} is not valid YAML or JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InputError(f"{file} must hold a mapping of fields")
        data.update(loaded)
    for item in sets or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--set {item!r} is not field=value")
        if name in _LISTS:
            data[name] = [v for v in value.split(",") if v]
        elif value.lower() in ("true", "false"):
            data[name] = value.lower() == "true"
        elif value.isdigit():
            data[name] = int(value)
        else:
            data[name] = value or None
    return data


def _show(entry: dict[str, Any]) -> None:
    console.print(fields((key, plain(value)) for key, value in entry.items()))


@register_app.command("add")
def register_add(
    register: RegisterArg,
    file: Annotated[Path | None, typer.Argument(help="the entry as YAML or JSON")] = None,
    region: Annotated[str, typer.Option(help="the region the entry belongs to")] = "cn",
    sets: SetOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record an entry; it is a ledger event of the region.

    Example: onshore register add rights_request --set kind=erasure --set received_on=2026-03-02
    --set subject=sub_0123abcd
    """
    with cli_errors():
        data = _fields(file, sets)
        entry = with_runtime(
            config, lambda rt: rt.registers.add(register, region, data, actor_role="officer").to_dict()
        )
    if json_out:
        print_json(entry)
    else:
        console.print(f"{register} [bold]{entry['id']}[/] recorded (ledger index {entry['ledger_index']})")
        if entry.get("deadline"):
            console.print(f"deadline: {entry['deadline']}")


@register_app.command("change")
def register_change(
    register: RegisterArg,
    entry_id: Annotated[int, typer.Argument(help="the entry number")],
    file: Annotated[Path | None, typer.Argument(help="changed fields as YAML or JSON")] = None,
    sets: SetOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change fields of an entry (a new version, a ledger event); the other fields stay.

    Example: onshore register change incident 3 --set closed_on=2026-04-10
    """
    with cli_errors():
        data = _fields(file, sets)
        entry = with_runtime(
            config, lambda rt: rt.registers.change(register, entry_id, data, actor_role="officer").to_dict()
        )
    if json_out:
        print_json(entry)
    else:
        console.print(f"{register} {entry_id} is now version {entry['version']} (ledger index {entry['ledger_index']})")


@register_app.command("handle")
def register_handle(
    entry_id: Annotated[int, typer.Argument(help="the rights request number")],
    note: Annotated[str | None, typer.Option(help="what was done (no personal data)")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Carry out a rights request and record it handled (an erasure runs now, in every region).

    Example: onshore register handle 7
    """
    with cli_errors():
        entry = with_runtime(
            config, lambda rt: rt.registers.handle(entry_id, actor_role="officer", note=note).to_dict()
        )
    if json_out:
        print_json(entry)
        return
    verdict = {True: "within", False: "[red]after[/]", None: "no"}[entry["within_deadline"]]
    console.print(f"rights request {entry_id} handled on {entry['handled_on']}: {verdict} deadline {entry['deadline']}")


@register_app.command("list")
def register_list(
    register: RegisterArg,
    region: Annotated[str | None, typer.Option(help="only this region")] = None,
    year: Annotated[int | None, typer.Option(help="only entries dated in this year")] = None,
    status: Annotated[str | None, typer.Option(help="only this status (received, handled, open, closed…)")] = None,
    overdue: Annotated[bool, typer.Option(help="rights requests past their deadline, not handled")] = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """List a register's entries, oldest first.

    Example: onshore register list rights_request --overdue
    """

    def run(rt: Any) -> list[dict[str, Any]]:
        if overdue:
            return [e.to_dict() for e in rt.registers.overdue(region=region)]
        return [e.to_dict() for e in rt.registers.list_entries(register, region=region, year=year, status=status)]

    with cli_errors():
        rows = with_runtime(config, run)
    if json_out:
        print_json({"entries": rows})
        return
    if not rows:
        console.print("no entry")
        return
    keys = [k for k in rows[0] if k not in ("register", "handling", "note", "ledger_index")][:9]
    console.print(data_table(keys, [[plain(row[k]) for k in keys] for row in rows]))


@register_app.command("show")
def register_show(
    register: RegisterArg,
    entry_id: Annotated[int, typer.Argument(help="the entry number")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show one entry in full.

    Example: onshore register show complaint 2 --json
    """
    with cli_errors():
        entry = with_runtime(config, lambda rt: rt.registers.get(register, entry_id).to_dict())
    if json_out:
        print_json(entry)
    else:
        _show(entry)
