"""`onshore consent | subject | retention`: the drivers' and owners' rights, as the officer acts on them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, print_json, with_runtime
from onshore.cli_tables import data_table, number, wrapped

consent_app = typer.Typer(
    help="Grant, withdraw and list consents (per subject and purpose; a vehicle names its owner).", no_args_is_help=True
)
subject_app = typer.Typer(
    help="Drivers and owners: bind them to vehicles, answer access and erasure requests.", no_args_is_help=True
)
retention_app = typer.Typer(help="Delete what the rule pack's retention rules say has expired.", no_args_is_help=True)


def _errors() -> Any:
    return cli_errors()


_with_runtime = with_runtime
_print_json = print_json


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def _subject_for(rt: Any, subject: str | None, vin: str | None, market: str | None) -> str:
    if subject:
        return subject
    if not (vin and market):
        from onshore.errors import InputError

        raise InputError("name the subject with --subject, or the vehicle with --vin and --market (its owner)")
    return str(rt.vehicles.owner_of(vin, market))


SubjectOption = Annotated[str | None, typer.Option(help="subject id (from `onshore subject bind`)")]
VinOption = Annotated[str | None, typer.Option(help="a vehicle's VIN: its registered owner is the subject")]
MarketOption = Annotated[str | None, typer.Option(help="the vehicle's market, e.g. CN")]


@consent_app.command("grant")
def consent_grant(
    purpose: Annotated[str, typer.Option(help="purpose id from the rule pack")],
    subject: SubjectOption = None,
    vin: VinOption = None,
    market: MarketOption = None,
    level: Annotated[str, typer.Option(help="ordinary, or separate for sensitive personal data")] = "ordinary",
    validity: Annotated[
        str | None, typer.Option(help="trip, 7d, 90d, 365d (the pack's choices); omit: until withdrawn")
    ] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a consent the subject gave (the officer acting on their behalf).

    Example: onshore consent grant --vin LSVM0TEST00000001 --market CN --purpose navigation --level separate
    --validity 90d
    """

    def run(rt: Any) -> Any:
        return rt.consents.grant(_subject_for(rt, subject, vin, market), purpose, level, validity, actor_role="officer")

    with _errors():
        change = _with_runtime(config, run)
    if json_out:
        _print_json(dataclasses.asdict(change))
        return
    until = "until withdrawn" if change.expires_ms is None else f"until {_day(change.expires_ms)}"
    console.print(
        f"consent for {change.purpose} ({change.level}, {until}) recorded at ledger index {change.ledger_index}"
    )


@consent_app.command("withdraw")
def consent_withdraw(
    purpose: Annotated[str, typer.Option(help="purpose id from the rule pack")],
    subject: SubjectOption = None,
    vin: VinOption = None,
    market: MarketOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Withdraw consent for a purpose; collection stops with the next batch.

    Example: onshore consent withdraw --vin LSVM0TEST00000001 --market CN --purpose navigation
    """

    def run(rt: Any) -> Any:
        return rt.consents.withdraw(_subject_for(rt, subject, vin, market), purpose, actor_role="officer")

    with _errors():
        change = _with_runtime(config, run)
    if json_out:
        _print_json({"purpose": change.purpose, "withdrawn": True, "ledger_index": change.ledger_index})
        return
    console.print(f"consent for {change.purpose} withdrawn (ledger index {change.ledger_index})")


@consent_app.command("list")
def consent_list(
    subject: SubjectOption = None,
    vin: VinOption = None,
    market: MarketOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show the consents in force: purpose, what it is for, level, granted and expires.

    Example: onshore consent list --vin LSVM0TEST00000001 --market CN
    """

    def run(rt: Any) -> Any:
        ref = _subject_for(rt, subject, vin, market)
        return ref, rt.consents.in_force(ref)

    with _errors():
        ref, rows = _with_runtime(config, run)
    if json_out:
        _print_json({"subject": ref, "in_force": rows})
        return
    if not rows:
        console.print(f"no consent in force for subject {ref}: nothing that needs consent is collected")
        return
    table = data_table(["purpose", wrapped("for"), "level", "granted", "expires"], title=f"consents of {ref}")
    for row in rows:
        expires = row["expires"] or "withdrawn only"
        table.add_row(row["purpose"], row["description"], row["level"], row["granted"], expires)
    console.print(table)


@subject_app.command("bind")
def subject_bind(
    vin: Annotated[str, typer.Option(help="the vehicle's VIN")],
    market: Annotated[str, typer.Option(help="the vehicle's market, e.g. CN")],
    role: Annotated[str, typer.Option(help="owner, driver or passenger")] = "driver",
    profile: Annotated[str | None, typer.Option(help="the vehicle's driver-profile id for this person")] = None,
    subject: Annotated[str | None, typer.Option(help="an existing subject id (same person, another vehicle)")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Bind a person to a vehicle from now on and print their subject id and app token (shown once).

    Example: onshore subject bind --vin LSVM0TEST00000001 --market CN --role driver --profile 2
    """
    with _errors():
        ref, token = _with_runtime(
            config, lambda rt: rt.subjects.bind(vin, market, role, subject_ref=subject, profile=profile)
        )
    if json_out:
        _print_json({"subject": ref, "token": token})
    else:
        console.print(f"subject [bold]{ref}[/] bound as {role}; app token (shown once):")
        console.print(token or "-", highlight=False, soft_wrap=True)


@subject_app.command("owner")
def subject_owner(
    vin: Annotated[str, typer.Option(help="the vehicle's VIN")],
    market: Annotated[str, typer.Option(help="the vehicle's market")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Print the subject id of a vehicle's registered owner.

    Example: onshore subject owner --vin LSVM0TEST00000001 --market CN
    """
    with _errors():
        ref = _with_runtime(config, lambda rt: rt.vehicles.owner_of(vin, market))
    if json_out:
        _print_json({"subject": ref})
        return
    console.print(ref, highlight=False)


@subject_app.command("access")
def subject_access(
    subject: Annotated[str, typer.Option(help="subject id (from `onshore subject bind` or `subject owner`)")],
    out: Annotated[Path, typer.Option(help="file to write the bundle to (JSON)")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Answer an access request: write everything held about the subject, region by region.

    Example: onshore subject access --subject sub_0123abcd --out access.json
    """
    with _errors():
        bundle = _with_runtime(config, lambda rt: rt.requests.access_bundle(subject, actor_role="officer"))
    out.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))  # row keys: quoted_name
    summary = bundle["summary"]
    if json_out:
        _print_json({"out": str(out), "summary": summary})
        return
    console.print(f"wrote {out}: {summary['records']} records in {len(summary['stored_in'])} region(s)")


@subject_app.command("erase")
def subject_erase(
    subject: Annotated[str, typer.Option(help="subject id (from `onshore subject bind` or `subject owner`)")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Answer an erasure request: destroy the subject's keys in every region, purge their data, report.

    Example: onshore subject erase --subject sub_0123abcd --json
    """
    with _errors():
        report = _with_runtime(config, lambda rt: rt.requests.erase(subject, actor_role="officer"))
    if json_out:
        _print_json(report.to_dict())
        return
    for name, part in report.regions.items():
        console.print(
            f"region {name}: key destroyed={part.get('key_destroyed')}, records purged={part.get('records_purged', 0)}"
        )
    verdict = "within" if report.within_deadline else "[red]after[/]"
    console.print(f"completed {report.completed_at}, {verdict} the {report.deadline_working_days}-working-day deadline")
    for item in report.derived_data:
        console.print(f"  - {item}")


@retention_app.command("run")
def retention_run(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Delete stored data older than its retention rule allows (the server also runs this on a schedule).

    Example: onshore retention run --json
    """
    with _errors():
        results = _with_runtime(config, lambda rt: rt.retention.run())
    rows = [r.__dict__ for r in results]
    if json_out:
        _print_json({"deleted": sum(r["deleted"] for r in rows), "rules": rows})
        return
    table = data_table(["region", "rule", number("deleted"), number("ledger index")])
    for r in rows:
        table.add_row(r["region"], r["rule_id"], r["deleted"], r["ledger_index"])
    console.print(table)
