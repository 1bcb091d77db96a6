"""The `onshore` command line: thin commands over the service layer, `--json` for scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import onshore
from onshore.border.cli import bases_app, export_app
from onshore.border.transfers_cli import add_transfer_commands
from onshore.bus_cli import bus_app, worker_command
from onshore.cli_support import (
    ConfigOption,
    EnvOption,
    JsonOption,
    cli_errors,
    console,
    finish_check,
    print_env,
    print_json,
    with_runtime,
)
from onshore.cli_tables import Col, data_table, fields, number, plain, wrapped
from onshore.config import load_settings, settings_documentation
from onshore.db_cli import db_app
from onshore.keys_cli import keys_app
from onshore.ledger.cli import ledger_app
from onshore.mqtt_cli import mqtt
from onshore.registers.cli import register_app
from onshore.reports.cli import report_app
from onshore.rights.cli import consent_app, retention_app, subject_app
from onshore.vehicles_cli import gateway_app, vehicle_app
from onshore.vision.cli import vision_app

app = typer.Typer(
    name="onshore",
    help="Keeps connected-vehicle data in the country that collected it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="Inspect the rule packs in force.", no_args_is_help=True)
residency_app = typer.Typer(help="Check that every datum sits in its own country.", no_args_is_help=True)
app.add_typer(vehicle_app, name="vehicle")
app.add_typer(gateway_app, name="gateway")
app.add_typer(consent_app, name="consent")
app.add_typer(rules_app, name="rules")
app.add_typer(residency_app, name="residency")
app.add_typer(subject_app, name="subject")
app.add_typer(retention_app, name="retention")
app.add_typer(vision_app, name="vision")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bases_app, name="bases")
add_transfer_commands(export_app)
app.add_typer(export_app, name="export")
app.add_typer(register_app, name="register")
app.add_typer(report_app, name="report")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(bus_app, name="bus")
app.command("mqtt")(mqtt)


def _version(value: bool) -> None:
    if value:
        console.print(f"onshore {onshore.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Keeps connected-vehicle data in the country that collected it."""


def _errors() -> Any:
    return cli_errors()


_with_runtime = with_runtime
_print_json = print_json


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="where to write onshore.toml")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing onshore.toml")] = False,
    json_out: JsonOption = False,
    env: EnvOption = False,
) -> None:
    """Write a commented onshore.toml (regions cn and eu) and create their stores.

    The API tokens are printed once (with --env as OFFICER_TOKEN, ANALYST_CN_TOKEN, ... shell variables).

    Example: onshore init ./deploy && onshore serve -c ./deploy/onshore.toml

    Example: eval "$(onshore init ./deploy --env)"
    """
    from onshore.runtime import Runtime
    from onshore.workspace import init_workspace

    with _errors():
        path, tokens = init_workspace(folder, force=force)
        Runtime(load_settings(path), create=True).close()  # creates the stores (at the head revision) and keys
    if json_out:
        _print_json({"config": str(path), "tokens": [t.__dict__ for t in tokens]})
        return
    if env:
        print_env({"ONSHORE_CONFIG": str(path.resolve()), **{f"{t.name}_token": t.token for t in tokens}})
        return
    console.print(f"wrote [bold]{path}[/] and created the stores of regions cn and eu")
    console.print(
        data_table(
            ["name", "role", "region", "token (shown once)"],
            [(t.name, t.role, t.region or "*", t.token) for t in tokens],
        )
    )


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="override server.host")] = None,
    port: Annotated[int | None, typer.Option(help="override server.port")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="embedded (admit and process here) or gateway (admit, publish to NATS JetStream, answer receipts); "
            "default: what [bus] kind says"
        ),
    ] = None,
) -> None:
    """Run the API server: embedded, or a gateway of distributed mode.

    Example: onshore serve --port 8470     (a gateway: onshore serve --role gateway, with [bus] kind = "nats")
    """
    import uvicorn

    from onshore.runtime import Runtime
    from onshore.web.app import create_app
    from onshore.web.logs import log_config

    with _errors():
        overrides: dict[str, Any] = {}
        if host or port:
            overrides["server"] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        settings = load_settings(config, overrides=overrides)
        _check_role(role, settings.bus.kind)
        runtime = Runtime(settings)
        try:
            if runtime.queue is not None:  # a gateway starts only once it can publish
                runtime.queue.start(list(settings.regions))
        except BaseException:
            runtime.close()
            raise
    try:
        # uvicorn's access log is off: it would write query strings; the app logs method, path, status, duration
        uvicorn.run(
            create_app(runtime),
            host=settings.server.host,
            port=settings.server.port,
            log_config=log_config("info"),
            log_level="info",
            access_log=False,
        )
    finally:
        runtime.close()


app.command("worker")(worker_command)


def _check_role(role: str | None, bus_kind: str) -> None:
    from onshore.errors import ConfigError

    expected = {"inprocess": "embedded", "nats": "gateway"}[bus_kind]
    if role is None or role == expected:
        return
    if role not in ("embedded", "gateway"):
        raise ConfigError(f"--role {role!r}: use embedded or gateway")
    raise ConfigError(
        f'--role {role} needs [bus] kind = "{"nats" if role == "gateway" else "inprocess"}" '
        f'(this configuration has kind = "{bus_kind}"): one configuration file picks the mode'
    )


@app.command()
def demo(
    quick: Annotated[bool, typer.Option(help="a short bounded run (CI, smoke tests)")] = False,
    json_out: JsonOption = False,
    vehicles: Annotated[int | None, typer.Option(min=1, max=2000, help="simulated vehicles")] = None,
    duration: Annotated[float | None, typer.Option(min=1, max=3600, help="seconds of simulated driving")] = None,
    folder: Annotated[Path, typer.Option("--dir", help="demo workspace (recreated)")] = Path("onshore-demo"),
) -> None:
    """Start the server on 127.0.0.1, drive a simulated fleet against it, and summarise.

    Example: onshore demo --quick --json
    """
    from onshore.demo import DemoOptions, run_demo

    options = DemoOptions.for_mode(quick=quick, vehicles=vehicles, duration_s=duration, folder=folder)
    with _errors():
        summary = run_demo(options, console=None if json_out else console)
    if json_out:
        _print_json(summary)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSON array or NDJSON file of signal records", exists=True)],
    vin: Annotated[str, typer.Option(help="the vehicle the records come from (must be registered)")],
    market: Annotated[str, typer.Option(help="the vehicle's market, e.g. CN")],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest a file of records for a registered vehicle, through the same pipeline as HTTP.

    Example: onshore ingest trip.ndjson --vin LSIM0000000000001 --market CN
    """
    from onshore.model import Vehicle

    def run(runtime: Any) -> dict[str, Any]:
        region, ref = runtime.vehicles.ref_for(vin, market)
        vehicle = Vehicle(ref=ref, market=region.jurisdiction, region=region.name)
        content_type = "application/x-ndjson" if file.suffix in (".ndjson", ".jsonl") else "application/json"
        return runtime.ingest.ingest_body(vehicle, file.read_bytes(), content_type).to_dict()

    with _errors():
        result = _with_runtime(config, run)
    if json_out:
        _print_json(result)
    else:
        console.print(fields((key, plain(value)) for key, value in result.items()))


@app.command("config")
def config_cmd(json_out: JsonOption = False) -> None:
    """List every setting and what it means.

    Example: onshore config
    """
    docs = settings_documentation()
    if json_out:
        _print_json(docs)
        return
    console.print(data_table(["setting", wrapped("meaning")], docs.items()))  # plain text: "[/prefix]" is no markup


@rules_app.command("list")
def rules_list(
    pack: Annotated[str, typer.Argument(help="built-in pack name or YAML path")] = "cn-auto",
    json_out: JsonOption = False,
) -> None:
    """Show a pack's rules with their legal sources; validates the pack on the way.

    Example: onshore rules list cn-auto
    """
    from onshore.rules.loader import load_pack

    with _errors():
        loaded = load_pack(pack)
    p = loaded.pack
    cameras = p.frames.cameras if p.frames is not None else []
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "kind": kind,
            "active": r.active,
            "source": f"{r.source.instrument} {r.source.article} [{r.source.confidence.value}]",
            "categories": [c.value for c in getattr(r, "categories", [])],
            "signals": len(getattr(r, "signals", [])),
        }
        for kind, rules in (
            ("signal", p.signals),
            ("precision", p.precision),
            ("zone", p.zones),
            ("camera", cameras),
            ("retention", p.retention),
        )
        for r in rules
    ]
    if json_out:
        _print_json({"pack": p.pack, "version": p.version, "jurisdiction": p.jurisdiction, "rules": rows})
        return
    columns: list[Col | str] = ["rule", "kind", "active", wrapped("categories"), number("signals"), wrapped("source")]
    table = data_table(columns, title=f"{p.pack} {p.version} ({p.jurisdiction})")
    for r in rows:
        active = "yes" if r["active"] else "held back"
        table.add_row(r["id"], r["kind"], active, ", ".join(r["categories"]), r["signals"], r["source"])
    console.print(table)


@rules_app.command("classify")
def rules_classify(
    signals: Annotated[list[str], typer.Argument(help="signal names to classify")],
    pack: Annotated[str, typer.Option(help="built-in pack name or YAML path")] = "cn-auto",
    json_out: JsonOption = False,
) -> None:
    """Show how a pack classifies signals, and which rule and article decide.

    Example: onshore rules classify Location VehicleSpeed Vehicle.Driver.HeartRate
    """
    from onshore.rules.loader import load_pack

    with _errors():
        loaded = load_pack(pack)
    out: list[dict[str, Any]] = []
    for s in signals:
        r = loaded.resolve(s)
        out.append(
            {
                "signal": s,
                "rule": r.rule_id,
                "categories": list(r.categories),
                "tags": list(r.tags),
                "purposes": list(r.purposes),
                "source": r.article,
                "known": r.known,
            }
        )
    if json_out:
        _print_json(out)
        return
    table = data_table(["signal", wrapped("categories"), wrapped("tags"), "rule", wrapped("source")])
    for o in out:
        table.add_row(
            o["signal"],
            ", ".join(o["categories"]),
            ", ".join(o["tags"]),
            o["rule"] + ("" if o["known"] else " (unknown signal)"),
            o["source"],
        )
    console.print(table)


@residency_app.command("check")
def residency_check(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Scan every store for data whose origin differs from the store's jurisdiction.

    Exit 0: every datum is in its own country; 1: data of another origin found; 3: a store could not be read.

    Example: onshore residency check --json
    """

    def run(rt: Any) -> list[dict[str, Any]]:
        findings = []
        for name, region in rt.regions.items():
            for origin, count in region.store.origins().items():
                if origin != region.jurisdiction:
                    findings.append(
                        {
                            "region": name,
                            "jurisdiction": region.jurisdiction,
                            "origin": origin,
                            "records": count,
                        }
                    )
        return findings

    with cli_errors(check=True):
        findings = _with_runtime(config, run)
    problems = [
        f"region {f['region']} ({f['jurisdiction']}) holds {f['records']} record(s) of origin {f['origin']}"
        for f in findings
    ]
    finish_check(
        json_out,
        {"ok": not findings, "findings": findings},
        problems,
        "every stored record is in a region of its own origin",
    )


def main() -> None:
    app()
