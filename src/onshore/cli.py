"""The `onshore` command line: thin commands over the service layer, `--json` for scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from onshore.border.cli import bases_app, export_app
from onshore.bus_cli import bus_app, worker_command
from onshore.cli_support import (
    ConfigOption,
    JsonOption,
    cli_errors,
    console,
    finish_check,
    print_json,
    with_runtime,
)
from onshore.config import load_settings, settings_documentation
from onshore.db_cli import db_app
from onshore.keys_cli import keys_app
from onshore.ledger.cli import ledger_app
from onshore.rights.cli import consent_app, retention_app, subject_app
from onshore.vision.cli import vision_app

app = typer.Typer(
    name="onshore",
    help="Keeps connected-vehicle data in the country that collected it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
vehicle_app = typer.Typer(help="Register vehicles and manage their tokens.", no_args_is_help=True)
rules_app = typer.Typer(help="Inspect the rule packs in force.", no_args_is_help=True)
residency_app = typer.Typer(help="Check that every datum sits in its own country.", no_args_is_help=True)
app.add_typer(vehicle_app, name="vehicle")
app.add_typer(consent_app, name="consent")
app.add_typer(rules_app, name="rules")
app.add_typer(residency_app, name="residency")
app.add_typer(subject_app, name="subject")
app.add_typer(retention_app, name="retention")
app.add_typer(vision_app, name="vision")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bases_app, name="bases")
app.add_typer(export_app, name="export")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(bus_app, name="bus")


def _errors() -> Any:
    return cli_errors()


_with_runtime = with_runtime
_print_json = print_json


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="where to write onshore.toml")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing onshore.toml")] = False,
    json_out: JsonOption = False,
) -> None:
    """Write a commented onshore.toml (regions cn and eu) and create their stores.

    Example: onshore init ./deploy && onshore -c ./deploy/onshore.toml serve
    """
    from onshore.runtime import Runtime
    from onshore.workspace import init_workspace

    with _errors():
        path, tokens = init_workspace(folder, force=force)
        Runtime(load_settings(path), create=True).close()  # creates the stores (at the head revision) and keys
    if json_out:
        _print_json({"config": str(path), "tokens": [t.__dict__ for t in tokens]})
        return
    console.print(f"wrote [bold]{path}[/] and created the stores of regions cn and eu")
    table = Table("name", "role", "region", "token (shown once)")
    for t in tokens:
        table.add_row(t.name, t.role, t.region or "*", t.token)
    console.print(table)


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
        console.print(result)


@app.command("config")
def config_cmd(json_out: JsonOption = False) -> None:
    """List every setting and what it means.

    Example: onshore config
    """
    docs = settings_documentation()
    if json_out:
        _print_json(docs)
        return
    table = Table("setting", "meaning")
    for key, text in docs.items():
        table.add_row(key, text)
    console.print(table)


@vehicle_app.command("add")
def vehicle_add(
    vin: Annotated[str, typer.Argument(help="17-character VIN (never stored; kept as a keyed pseudonym)")],
    market: Annotated[str, typer.Option(help="market the vehicle was sold into: its data's origin")],
    rotate: Annotated[bool, typer.Option(help="issue a new token for a registered vehicle")] = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register a vehicle and print its token (shown once, stored hashed).

    Example: onshore vehicle add LSIM0000000000001 --market CN
    """
    with _errors():
        issued = _with_runtime(config, lambda rt: rt.vehicles.add(vin, market, rotate=rotate))
    if json_out:
        _print_json({"token": issued.token, "region": issued.vehicle.region, "vehicle_ref": issued.vehicle.ref})
    else:
        console.print(
            f"vehicle registered in region [bold]{issued.vehicle.region}[/] as vehicle_ref {issued.vehicle.ref}; "
            "token (shown once):",
            highlight=False,
        )
        console.print(issued.token, highlight=False, soft_wrap=True)


@vehicle_app.command("revoke")
def vehicle_revoke(
    vin: Annotated[str, typer.Argument(help="the vehicle's VIN")],
    market: Annotated[str | None, typer.Option(help="narrow the search to one market")] = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a vehicle's token; its next request is refused.

    Example: onshore vehicle revoke LSIM0000000000001
    """
    with _errors():
        vehicle = _with_runtime(config, lambda rt: rt.vehicles.revoke(vin, market))
    console.print(f"revoked the vehicle's token in region {vehicle.region}")


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
    table = Table(
        "rule",
        "kind",
        "active",
        "categories",
        "signals",
        "source",
        title=f"{p.pack} {p.version} ({p.jurisdiction})",
    )
    for r in rows:
        table.add_row(
            r["id"],
            r["kind"],
            "yes" if r["active"] else "held back",
            ",".join(r["categories"]),
            str(r["signals"]),
            r["source"],
        )
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
    table = Table("signal", "categories", "tags", "rule", "source")
    for o in out:
        table.add_row(
            o["signal"],
            ",".join(o["categories"]),
            ",".join(o["tags"]),
            o["rule"] + ("" if o["known"] else " (unknown signal)"),
            o["source"],
        )
    console.print(table)


@residency_app.command("check")
def residency_check(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Scan every store for data whose origin differs from the store's jurisdiction; exit 1 on any.

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

    with _errors():
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
