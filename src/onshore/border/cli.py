"""`onshore bases …` and `onshore export …`: the officer's commands over the border service.

Exit codes: 0 done (``export decide``: every class would leave; ``export run``: something was released),
1 the gate denied something (``decide``: a class would be denied; ``run``: nothing was released), 2 bad usage
(a malformed file, an unknown basis…).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from onshore.border import dates
from onshore.border.decision_view import print_decision
from onshore.cli_support import (
    ConfigOption,
    JsonOption,
    T,
    cli_errors,
    console,
    err_console,
    finish_check,
    print_json,
    with_runtime,
)
from onshore.cli_tables import Col, DataTable, data_table, wrapped
from onshore.documents import read_document
from onshore.errors import InputError

if TYPE_CHECKING:
    from onshore.border.service import BorderService

bases_app = typer.Typer(help="Record, approve, revoke and list transfer bases (officer).", no_args_is_help=True)
export_app = typer.Typer(help="Decide and run export requests through the border gate.", no_args_is_help=True)

DateOption = Annotated[str | None, typer.Option("--date", help="status as of this date, YYYY-MM-DD (default today)")]
AllOption = Annotated[
    bool, typer.Option("--all", help="list every class and every reason (default: what failed, what was met counted)")
]


def _with_border(config: Path | None, fn: Callable[[BorderService], T]) -> T:
    """Run ``fn(border_service)`` over a runtime built from ``config``."""
    return with_runtime(config, lambda runtime: fn(runtime.border))


def _date(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None
    if not dates.EARLIEST <= day <= dates.LATEST:
        raise InputError(f"{what} {text} is outside the accepted range {dates.EARLIEST} .. {dates.LATEST}")
    return day


def _moment(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--at {text!r} is not an ISO date-time (e.g. 2024-05-01T12:00:00+08:00)") from None
    if not dates.EARLIEST <= at.date() <= dates.LATEST:
        raise InputError(f"--at {text} is outside the accepted range {dates.EARLIEST} .. {dates.LATEST}")
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _read_yaml(path: Path, what: str) -> Any:
    return read_document(path, what, InputError)


def _basis_table(rows: list[dict[str, Any]]) -> DataTable:
    columns: list[Col | str] = [
        "basis",
        "region",
        "route",
        wrapped("status"),
        "approved",
        "expires",
        "re-apply from",
        "recipient → dest",
    ]
    table = data_table(columns)
    for b in rows:
        status = b.get("status_on_date", b["status"])
        if b.get("in_reapply_window"):
            status += " (re-apply now)"
        table.add_row(
            b["id"],
            b["region"],
            b["route"],
            status,
            b["approved_on"],
            b["expires_on"],
            b["reapply_from"],
            f"{b['scope']['recipient']} → {','.join(b['scope']['destinations'])}",
        )
    return table


@bases_app.command("add")
def bases_add(
    file: Annotated[Path, typer.Argument(help="basis spec, YAML or JSON (docs/export-requests.md)", exists=True)],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a transfer basis as a draft; `approve` makes it usable.

    Example: onshore bases add cn-sa-2024-001.yaml
    """
    from onshore.border.bases import parse_spec

    with cli_errors():
        spec = parse_spec(_read_yaml(file, "basis"))
        basis = _with_border(config, lambda b: b.add_basis(spec, actor_role="officer").to_dict(b.today(spec.region)))
    if json_out:
        print_json(basis)
    else:
        console.print(f"basis [bold]{basis['id']}[/] recorded as a draft ({basis['route']}, region {basis['region']})")


@bases_app.command("approve")
def bases_approve(
    basis_id: Annotated[str, typer.Argument(help="the basis id")],
    on: Annotated[str | None, typer.Option("--on", help="date on the approval, YYYY-MM-DD (default today)")] = None,
    reference: Annotated[str | None, typer.Option(help="approval or filing number")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Approve a draft: fixes its expiry from the pack's validity for the route on that date.

    Example: onshore bases approve cn-sa-2024-001 --on 2024-06-03 --reference "CAC-2024-0815"
    """

    def run(border: Any) -> dict[str, Any]:
        region = border.bases.get(basis_id).spec.region
        approved_on = _date(on, "--on") or border.today(region)
        basis = border.approve_basis(basis_id, approved_on=approved_on, actor_role="officer", reference=reference)
        return basis.to_dict(border.today(region))

    with cli_errors():
        basis = _with_border(config, run)
    if json_out:
        print_json(basis)
    else:
        console.print(
            f"basis [bold]{basis['id']}[/] approved on {basis['approved_on']}; expires {basis['expires_on'] or 'never'}"
            + (f"; re-apply from {basis['reapply_from']}" if basis["reapply_from"] else "")
        )


@bases_app.command("revoke")
def bases_revoke(
    basis_id: Annotated[str, typer.Argument(help="the basis id")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Revoke a basis: nothing more leaves under it.

    Example: onshore bases revoke cn-sa-2024-001
    """
    with cli_errors():
        basis = _with_border(
            config, lambda b: (x := b.revoke_basis(basis_id, actor_role="officer")).to_dict(b.today(x.spec.region))
        )
    if json_out:
        print_json(basis)
    else:
        console.print(f"basis [bold]{basis['id']}[/] revoked")


@bases_app.command("list")
def bases_list(
    region: Annotated[str | None, typer.Option(help="only this region")] = None,
    date: DateOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """List bases with their status, expiry and re-application window on a date.

    Example: onshore bases list --region cn --date 2026-01-15
    """

    def run(border: Any) -> list[dict[str, Any]]:
        day = _date(date, "--date")
        return [b.to_dict(day or border.today(b.spec.region)) for b in border.bases.list_bases(region)]

    with cli_errors():
        rows = _with_border(config, run)
    if json_out:
        print_json({"bases": rows})
    elif rows:
        console.print(_basis_table(rows))
    else:
        console.print("no transfer basis is recorded")


@bases_app.command("show")
def bases_show(
    basis_id: Annotated[str, typer.Argument(help="the basis id")],
    date: DateOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show one basis in full: scope, conditions, validity and working days to expiry.

    Example: onshore bases show cn-sa-2024-001 --json
    """

    def run(border: Any) -> dict[str, Any]:
        basis = border.bases.get(basis_id)
        return basis.to_dict(_date(date, "--date") or border.today(basis.spec.region))

    with cli_errors():
        basis = _with_border(config, run)
    if json_out:
        print_json(basis)
        return
    console.print(_basis_table([basis]))
    scope = basis["scope"]
    console.print(
        f"scope: categories {','.join(scope['categories'])}; tags {','.join(scope['tags']) or 'any'}; "
        f"purposes {','.join(scope['purposes'])}; max people {scope['max_people'] or '-'}; "
        f"max records {scope['max_records'] or '-'}"
    )
    console.print(f"conditions: {', '.join(c['name'] for c in basis['conditions']) or 'none'}")
    if "working_days_to_expiry" in basis:
        console.print(f"working days to expiry: {basis['working_days_to_expiry']}")


@export_app.command("decide")
def export_decide(
    file: Annotated[Path, typer.Argument(help="export request, YAML or JSON", exists=True)],
    at: Annotated[str | None, typer.Option(help="decide as of this ISO date-time (default now)")] = None,
    show_all: AllOption = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Dry run: the decision per data class with rule ids, articles and numbers; releases and counts nothing.

    A denial prints what failed first: each denied class with the reasons that failed, then the conditions met
    counted (--all lists every class and reason; --json holds everything). Exit 0 when every class would leave,
    1 when a class would be denied.

    Example: onshore export decide request.yaml --json
    """
    from onshore.border.requests import load_request

    with cli_errors():
        request = load_request(file)
        decision = _with_border(config, lambda b: b.decide(request, at=_moment(at)).to_dict())
    if json_out:
        print_json(decision)
    else:
        print_decision(console, decision, show_all=show_all)
    if decision["verdict"] in ("deny", "partial"):
        raise typer.Exit(1)


@export_app.command("run")
def export_run(
    file: Annotated[Path, typer.Argument(help="export request, YAML or JSON", exists=True)],
    out: Annotated[Path, typer.Option("--out", help="bundle folder to create (must be new or empty)")],
    make_archive: Annotated[bool, typer.Option("--archive", help="also write <out>.tar.gz")] = False,
    show_all: AllOption = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Decide, release what is allowed into a bundle (data, manifest, ledger proof), count and log it.

    Every release and every denial is a ledger event. Exit 1 when nothing was released.

    Example: onshore export run request.yaml --out ./bundle-2024-06
    """
    from onshore.border.requests import load_request

    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with cli_errors(), Progress(*columns, console=err_console, disable=json_out, transient=True) as bar:
        request = load_request(file)
        task = bar.add_task("export", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = _with_border(
            config,
            lambda b: b.run(request, out, actor_role="officer", make_archive=make_archive, progress=tick),
        ).to_dict()
    if json_out:
        print_json(result)
    elif result["released"]:
        print_decision(console, result["decision"], show_all=show_all)
        console.print(
            f"released {result['records']} records to [bold]{result['bundle']}[/] "
            f"(transfer {result['transfer_id']}, ledger index {', '.join(map(str, result['ledger_indexes']))})"
        )
    else:
        print_decision(console, result["decision"], show_all=show_all)
        err_console.print(
            f"[red]denied: nothing was released[/] (transfer {result['transfer_id']}, "
            f"ledger index {', '.join(map(str, result['ledger_indexes']))})"
        )
    if not result["released"]:
        raise typer.Exit(1)


@export_app.command("verify")
def export_verify(
    bundle: Annotated[Path, typer.Argument(help="a bundle folder", exists=True, file_okay=False)],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", "-k", help="the region log's public key (vkey text or a file of vkeys); repeatable"),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Check a bundle offline: file hashes, the manifest's terms against the ledger event that committed to them,
    the inclusion proof of every ledger event, and with --key the log's signed checkpoint the proofs are against.

    Exit codes: 0 verified, 1 not verified, 2 bad usage (a malformed key).

    Example: onshore export verify ./bundle-2024-06 --key cn-log.vkey
    """
    from onshore.border.bundles import verify_bundle
    from onshore.ledger.verify import parse_vkeys

    with cli_errors():
        log_keys = parse_vkeys(key or [])
    problems = verify_bundle(bundle, log_keys)
    finish_check(
        json_out,
        {"ok": not problems, "problems": problems},
        problems,
        "bundle verified: files and terms match the ledger's events, which are included in the stated tree"
        + (", signed by the log's key" if key else ""),
    )


@export_app.command("balance")
def export_balance(
    region: Annotated[str, typer.Option(help="the region")],
    year: Annotated[int, typer.Option(help="calendar year of the earlier transfers")],
    kind: Annotated[str, typer.Option(help="pi, sensitive, or processor (people whose PI is held)")],
    people: Annotated[int, typer.Option(min=0, help="distinct people")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Declare people provided abroad before onshore counted (an opening balance for the counters).

    Example: onshore export balance --region cn --year 2024 --kind pi --people 12000
    """
    with cli_errors():
        _with_border(config, lambda b: b.set_opening_balance(region, year, kind, people))
    if json_out:
        print_json({"region": region, "year": year, "kind": kind, "people": people})
    else:
        console.print(f"opening balance for {region} {year} ({kind}): {people} people", highlight=False)
