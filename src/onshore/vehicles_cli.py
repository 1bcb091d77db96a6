"""`onshore vehicle ...` and `onshore gateway ...`: register vehicles, issue their tokens, and say which gateway
(a fleet back-end: a fleet-telemetry server, a TSP) speaks for which vehicle.

A gateway is a token of role ``gateway`` in the config (`onshore gateway add NAME` writes one); a vehicle is
registered to at most one gateway (`onshore vehicle add --vin VIN --market CN --gateway NAME`, or `onshore vehicle
assign VIN --gateway NAME` later). VINs are never stored or printed back: listings show the vehicle's pseudonym.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import typer
from rich.text import Text

from onshore.cli_support import (
    ConfigOption,
    EnvOption,
    JsonOption,
    cli_errors,
    console,
    print_env,
    print_json,
    with_runtime,
)
from onshore.cli_tables import data_table, number

vehicle_app = typer.Typer(help="Register vehicles, manage their tokens and gateways.", no_args_is_help=True)
gateway_app = typer.Typer(
    help="Gateways: fleet back-ends that speak for the vehicles registered to them.", no_args_is_help=True
)

GATEWAY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
GatewayOption = Annotated[str | None, typer.Option(help="the gateway (a configured gateway token's name)")]


@vehicle_app.command("add")
def vehicle_add(
    vin: Annotated[str, typer.Option(help="17-character VIN (never stored; kept as a keyed pseudonym)")],
    market: Annotated[str, typer.Option(help="market the vehicle was sold into: its data's origin")],
    rotate: Annotated[bool, typer.Option(help="issue a new token for a registered vehicle")] = False,
    gateway: Annotated[str | None, typer.Option(help="register it to this gateway too")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
    env: EnvOption = False,
) -> None:
    """Register a vehicle and print its token (shown once, stored hashed).

    With --env: VEHICLE_TOKEN, VEHICLE_REF and VEHICLE_REGION as shell variables.

    Example: onshore vehicle add --vin LSIM0000000000001 --market CN --gateway fleet-cn

    Example: eval "$(onshore vehicle add --vin LSIM0000000000001 --market CN --env)"
    """
    with cli_errors():
        issued = with_runtime(config, lambda rt: rt.vehicles.add(vin, market, rotate=rotate, gateway=gateway))
    if json_out:
        print_json(
            {
                "token": issued.token,
                "region": issued.vehicle.region,
                "vehicle_ref": issued.vehicle.ref,
                "gateway": gateway,
            }
        )
        return
    if env:
        print_env(
            {"vehicle_token": issued.token, "vehicle_ref": issued.vehicle.ref, "vehicle_region": issued.vehicle.region}
        )
        return
    via = f", spoken for by gateway [bold]{gateway}[/]" if gateway else ""
    console.print(
        f"vehicle registered in region [bold]{issued.vehicle.region}[/] as vehicle_ref {issued.vehicle.ref}{via}; "
        "token (shown once):",
        highlight=False,
    )
    console.print(issued.token, highlight=False, soft_wrap=True)


@vehicle_app.command("assign")
def vehicle_assign(
    vin: Annotated[str, typer.Option(help="the vehicle's VIN")],
    gateway: GatewayOption = None,
    no_gateway: Annotated[bool, typer.Option("--no-gateway", help="no gateway speaks for it any more")] = False,
    market: Annotated[str | None, typer.Option(help="narrow the search to one market")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register a vehicle to a gateway (its records may then come from that gateway), or to none.

    Example: onshore vehicle assign --vin LSIM0000000000001 --gateway fleet-cn
    """
    with cli_errors():
        if (gateway is None) == (not no_gateway):
            from onshore.errors import InputError

            raise InputError("name a gateway with --gateway NAME, or pass --no-gateway")
        vehicle = with_runtime(config, lambda rt: rt.vehicles.assign(vin, gateway, market))
    if json_out:
        print_json({"vehicle_ref": vehicle.ref, "region": vehicle.region, "gateway": gateway})
        return
    target = f"gateway {gateway}" if gateway else "no gateway"
    console.print(f"vehicle_ref {vehicle.ref} (region {vehicle.region}) is now spoken for by {target}", highlight=False)


@vehicle_app.command("list")
def vehicle_list(
    gateway: GatewayOption = None,
    region: Annotated[str | None, typer.Option(help="one region (default: every region)")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """List the registered vehicles (by pseudonym; VINs are never stored), of one gateway or all.

    Example: onshore vehicle list --gateway fleet-cn --json
    """
    with cli_errors():
        found = with_runtime(config, lambda rt: rt.vehicles.registered(gateway=gateway, region=region))
    rows = [
        {
            "region": v.region,
            "vehicle_ref": v.row.ref,
            "market": v.row.market,
            "gateway": v.row.gateway,
            "created_ms": v.row.created_ms,
            "revoked_ms": v.row.revoked_ms,
        }
        for v in found
    ]
    if json_out:
        print_json({"vehicles": rows})
        return
    table = data_table(["region", "vehicle_ref", "market", "gateway", "registered", "revoked"])
    for row in rows:
        created, revoked = _date(row["created_ms"]), _date(row["revoked_ms"])
        table.add_row(row["region"], row["vehicle_ref"], row["market"], row["gateway"], created, revoked)
    console.print(table)
    console.print(f"{len(rows)} vehicle(s)", highlight=False)


@vehicle_app.command("revoke")
def vehicle_revoke(
    vin: Annotated[str, typer.Option(help="the vehicle's VIN")],
    market: Annotated[str | None, typer.Option(help="narrow the search to one market")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Revoke a vehicle's token; its next request is refused, and no gateway may speak for it any more.

    Example: onshore vehicle revoke --vin LSIM0000000000001
    """
    with cli_errors():
        vehicle = with_runtime(config, lambda rt: rt.vehicles.revoke(vin, market))
    if json_out:
        print_json({"vehicle_ref": vehicle.ref, "region": vehicle.region, "revoked": True})
    else:
        console.print(f"revoked the vehicle's token in region {vehicle.region}", highlight=False)


@gateway_app.command("add")
def gateway_add(
    name: Annotated[
        str, typer.Argument(help="the gateway's name: lower-case letters, digits, . _ - (no personal data)")
    ],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a gateway token to the config file and print the token (shown once; only its SHA-256 is written).

    Restart the servers to load it. Example: onshore gateway add fleet-cn
    """
    from onshore.config import load_settings
    from onshore.errors import ConflictError, InputError
    from onshore.workspace import new_api_token, token_toml

    with cli_errors():
        if not GATEWAY_NAME.match(name):
            raise InputError(f"gateway name {name!r} must be 1-64 characters of a-z 0-9 . _ - (starting a-z 0-9)")
        settings = load_settings(config)
        if settings.config_file is None:
            raise InputError("no config file to write the token to: pass --config onshore.toml")
        if any(t.name == name for t in settings.tokens):
            raise ConflictError(f"a token named {name!r} is configured already: choose another name")
        token, digest = new_api_token()
        with settings.config_file.open("a", encoding="utf-8") as out:
            out.write(token_toml(name, "gateway", digest, None))
    if json_out:
        print_json({"name": name, "role": "gateway", "token": token, "config": str(settings.config_file)})
        return
    console.print(f"gateway [bold]{name}[/] added to {settings.config_file}; token (shown once):", highlight=False)
    console.print(token, highlight=False, soft_wrap=True)


@gateway_app.command("list")
def gateway_list(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List the configured gateways and how many vehicles each speaks for.

    Example: onshore gateway list
    """

    def run(rt: Any) -> list[dict[str, Any]]:
        counts: dict[str, int] = dict.fromkeys(sorted(rt.vehicles.gateways), 0)
        for vehicle in rt.vehicles.registered():
            if vehicle.row.gateway is not None and vehicle.row.revoked_ms is None:
                counts[vehicle.row.gateway] = counts.get(vehicle.row.gateway, 0) + 1
        return [{"name": n, "configured": n in rt.vehicles.gateways, "vehicles": c} for n, c in counts.items()]

    with cli_errors():
        gateways = with_runtime(config, run)
    if json_out:
        print_json({"gateways": gateways})
        return
    table = data_table(["gateway", "token configured", number("active vehicles")])
    for g in gateways:
        table.add_row(g["name"], "yes" if g["configured"] else Text("no", style="red"), g["vehicles"])
    console.print(table)


def _date(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")
