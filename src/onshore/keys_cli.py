"""`onshore keys ...`: provision each region's keys in its key store, and show which exist (never their bytes).

Shared (database) key stores never create a named key on first use, so a deployment runs
`onshore keys provision -c CONFIG` once per region before starting its processes. Both commands open only
the key stores, not the record stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, print_json
from onshore.cli_tables import data_table
from onshore.config import Settings

keys_app = typer.Typer(
    help="The regions' key stores: provision the keys, show which exist.",
    no_args_is_help=True,
)

RegionOption = Annotated[str | None, typer.Option("--region", "-r", help="one region (default: every region)")]


def _regions(settings: Settings, region: str | None) -> list[str]:
    from onshore.errors import InputError

    if region is None:
        return list(settings.regions)
    if region not in settings.regions:
        raise InputError(f"region {region!r} is not configured; configured: {', '.join(settings.regions)}")
    return [region]


def provision_keys(settings: Settings, region: str | None = None) -> dict[str, Any]:
    """Create the key tables and every missing named key of each region (or of ``region``); idempotent.

    Returns region → ``{"backend", "keys": {name: "created" | "present" | "env"}}``. An existing key is never
    replaced; a key injected through ``ONSHORE_KEY_<REGION>_<NAME>`` is not written to the store.

    Raises:
        InputError: ``region`` is not configured.
        StorageError: a key store cannot be reached.
    """
    from onshore.storage.region import region_key_store

    done: dict[str, Any] = {}
    for name in _regions(settings, region):
        store = region_key_store(settings, name)
        try:
            done[name] = {"backend": store.backend, "keys": store.provision()}
        finally:
            store.close()
    return done


def key_status(settings: Settings, region: str | None = None) -> dict[str, Any]:
    """Per region: the backend, each named key's state (``present``, ``env``, ``missing``), the number of
    subject data keys, and whether the region is fully provisioned."""
    from onshore.storage.region import region_key_store

    found: dict[str, Any] = {}
    for name in _regions(settings, region):
        store = region_key_store(settings, name)
        try:
            states = store.status()
            found[name] = {
                "backend": store.backend,
                "keys": states,
                "subject_keys": store.subject_key_count(),
                "provisioned": "missing" not in states.values(),
            }
        finally:
            store.close()
    return found


@keys_app.command("provision")
def provision(config: ConfigOption = None, region: RegionOption = None, json_out: JsonOption = False) -> None:
    """Create the missing keys of each region in its key store (idempotent; never replaces a key).

    Example: onshore keys provision -c /etc/onshore/onshore.toml --region cn
    """
    from onshore.config import load_settings

    with cli_errors():
        done = provision_keys(load_settings(config), region)
    if json_out:
        print_json({"regions": done})
        return
    for name, part in done.items():
        actions = ", ".join(f"{key} {action}" for key, action in part["keys"].items())
        console.print(f"region {name} ({part['backend']} key store): {actions}", highlight=False)


@keys_app.command("status")
def status(config: ConfigOption = None, region: RegionOption = None, json_out: JsonOption = False) -> None:
    """Show which keys each region's key store holds (never their bytes).

    Exits 1 when a region with a shared (database) key store lacks a key: run `onshore keys provision`.
    A folder key store creates a missing key on first use.

    Example: onshore keys status --json
    """
    from onshore.config import load_settings

    with cli_errors(check=True):
        settings = load_settings(config)
        found = key_status(settings, region)
    if json_out:
        print_json({"regions": found})
    else:
        table = data_table(["region", "backend", "key", "state"])
        for name, part in found.items():
            for key, state in part["keys"].items():
                table.add_row(name, part["backend"], key, state)
            table.add_row(name, part["backend"], "subject data keys", part["subject_keys"])
        console.print(table)
    unprovisioned = [n for n, p in found.items() if p["backend"] == "sql" and not p["provisioned"]]
    if unprovisioned:
        if not json_out:
            config_arg = f" -c {Path(settings.config_file)}" if settings.config_file else ""
            command = f"onshore keys provision{config_arg}"
            console.print(f"[red]not provisioned:[/] {', '.join(unprovisioned)}; run `{command}`", highlight=False)
        raise typer.Exit(1)
