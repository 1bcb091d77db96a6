"""`onshore db`: the record stores' schema revision — upgrade every region to this onshore's head, show where each
stands, and (developers) write the next migration."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, finish_check, print_json
from onshore.cli_tables import data_table
from onshore.config import load_settings

db_app = typer.Typer(
    help="The record stores' schema: upgrade them to this onshore's revision, show where each stands.",
    no_args_is_help=True,
)
RegionOption = Annotated[str | None, typer.Option("--region", help="only this region (default: every region)")]


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, region: RegionOption = None, json_out: JsonOption = False) -> None:
    """Upgrade each region's record store to this onshore's head revision, in one transaction per store.

    Idempotent: a store at head is left alone. An empty store is created; a store made before migrations is adopted.

    Example: onshore db upgrade -c ./deploy/onshore.toml
    """
    from onshore.storage.migrate import head_revision, upgrade_regions

    with cli_errors():
        done = upgrade_regions(load_settings(config), only=region)
    if json_out:
        print_json({"head": head_revision(), "regions": {n: {"before": b, "after": a} for n, (b, a) in done.items()}})
        return
    for name, (before, after) in done.items():
        change = "already at" if before == after else f"{before or 'nothing'} →"
        console.print(f"region [bold]{name}[/]: record store {change} revision {after}", highlight=False)


@db_app.command("status")
def db_status(config: ConfigOption = None, region: RegionOption = None, json_out: JsonOption = False) -> None:
    """Print each region's record-store revision and the head this onshore needs; exit 1 when one is not at head.

    Example: onshore db status --json
    """
    from onshore.storage.migrate import head_revision, region_states
    from onshore.storage.region import upgrade_command

    with cli_errors(check=True):
        settings = load_settings(config)
        states = region_states(settings, only=region)
    head = head_revision()
    problems = [
        f"{s.problem(name)}" + ("" if s.status == "ahead" else f": run `{upgrade_command(settings)}`")
        for name, s in states.items()
        if s.status != "current"
    ]
    payload = {
        "head": head,
        "ok": not problems,
        "regions": {n: {"revision": s.revision, "status": s.status} for n, s in states.items()},
    }
    if not json_out:
        rows = [(name, s.revision, head, s.status) for name, s in states.items()]
        console.print(data_table(["region", "revision", "head", "status"], rows))
    finish_check(json_out, payload, problems, f"every record store is at revision {head}")


@db_app.command("revision", hidden=True)
def db_revision(
    message: Annotated[str, typer.Argument(help="what the revision changes, e.g. 'records: add a tags index'")],
    autogenerate: Annotated[
        bool, typer.Option(help="fill it with what the tables declared in code add to a store at head")
    ] = True,
    json_out: JsonOption = False,
) -> None:
    """(developers) Write the next revision into src/onshore/storage/migrations/versions; review it, then test.

    Example: onshore db revision "records: add a tags index"
    """
    from onshore.storage.migrate import new_revision, upgrade
    from onshore.storage.sql import make_engine
    from onshore.tables import full_metadata

    with cli_errors(), tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'head.sqlite'}", base_dir=Path(scratch))
        try:
            upgrade(engine, region="scratch")
            path = new_revision(message, engine=engine, metadata=full_metadata(), autogenerate=autogenerate)
        finally:
            engine.dispose()
    if json_out:
        print_json({"path": str(path)})
    else:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
