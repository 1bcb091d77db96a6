"""`onshore worker` and `onshore bus`: the distributed mode's processing side and its backlog."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, print_json
from onshore.cli_tables import data_table, number
from onshore.config import load_settings

bus_app = typer.Typer(help="The NATS JetStream bus of distributed mode.", no_args_is_help=True)


def worker_command(
    region: Annotated[str, typer.Option("--region", help="the region whose stream this worker consumes")],
    config: ConfigOption = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.5, help="stop after this many seconds with nothing to do (benches, drains)"),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Process the batches gateways published to one region's stream, until SIGTERM or SIGINT.

    Run as many as the region needs, on any machine that reaches its NATS and its stores: they share one
    durable consumer. Needs [bus] kind = "nats".

    Example: onshore worker --region cn -c ./deploy/onshore.toml
    """
    from onshore.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with cli_errors():
        stats = run_worker(load_settings(config), region, idle_exit_s=idle_exit)
    if json_out:
        print_json(stats.to_dict())
    else:
        console.print(
            f"worker of region {region} stopped: {stats.processed} batches processed "
            f"({stats.redelivered} redelivered), {stats.refused} refused, {stats.retried} retried",
            highlight=False,
        )


@bus_app.command("status")
def bus_status(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Each region's backlog: batches in its stream, not yet delivered, in flight, delivered again.

    Example: onshore bus status -c ./deploy/onshore.toml --json
    """
    from onshore.errors import ConfigError
    from onshore.ingest.nats_bus import NatsBus

    with cli_errors():
        settings = load_settings(config)
        if settings.bus.kind != "nats":
            raise ConfigError('this configuration runs embedded: set [bus] kind = "nats" for a bus to inspect')
        bus = NatsBus(settings.bus, name="onshore-cli")
        try:
            depth = {region: bus.depth(region) for region in settings.regions}
        finally:
            bus.close()
    if json_out:
        print_json(depth)
        return
    table = data_table(["region", *map(number, ("in stream", "not delivered", "in flight", "redelivered"))])
    for region, d in depth.items():
        table.add_row(region, *(d[k] for k in ("messages", "pending", "in_flight", "redelivered")))
    console.print(table)
