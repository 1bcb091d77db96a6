"""What `onshore ledger verify` prints and how it exits, for both of its modes.

As an auditor (``--url`` or ``--bundle``): a progress bar while the events download, then the verdict of
``ledger.verify``. As the operator (``-c CONFIG``): each region's tree and content re-derived from its own stores
(``ledger.content_check``). Exit codes: 0 verified, 1 not verified, 2 bad usage, 3 log unreadable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn

from onshore.cli_support import EXIT_FOUND, EXIT_OK, EXIT_UNCHECKED, cli_errors, console, err_console, print_json
from onshore.cli_support import EXIT_USAGE as EXIT_USAGE
from onshore.cli_tables import Cell, fields
from onshore.errors import OnshoreError

EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_UNREADABLE = EXIT_OK, EXIT_FOUND, EXIT_UNCHECKED  # the CLI's check codes


def usage_error(message: str) -> Any:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def verify_stores(config: Path, region: str | None, *, json_out: bool) -> None:
    """``verify -c``: each region's tree and content checked from its own stores; exits with the verdict."""
    from onshore.config import load_settings
    from onshore.ledger.content_check import check_region_stores
    from onshore.ledger.store import MerkleLog
    from onshore.runtime import Runtime

    with cli_errors(EXIT_USAGE):
        runtime = Runtime(load_settings(config))
    try:
        names = [region] if region else list(runtime.regions)
        if region is not None and region not in runtime.regions:
            usage_error(f"region {region!r} is not configured; configured: {', '.join(runtime.regions)}")
        verdicts = []
        for name in names:
            try:
                with runtime.regions[name].store.read("verify stores") as conn:
                    verdicts.append(check_region_stores(MerkleLog(name), conn))
            except OnshoreError as exc:
                err_console.print(f"[bold red]could not read region {name}:[/] {exc.message}", highlight=False)
                raise typer.Exit(EXIT_UNREADABLE) from None
    finally:
        runtime.close()
    ok = all(v.ok for v in verdicts)
    if json_out:
        print_json({"ok": ok, "regions": {v.region: v.to_dict() for v in verdicts}})
    else:
        for v in verdicts:
            mark = "[bold green]VERIFIED[/]" if v.ok else "[bold red]NOT VERIFIED[/]"
            console.print(
                f"{mark}  region {v.region}: {v.batches_checked:,} stored batches, {v.rows_checked:,} rows, "
                f"{v.tombstones_checked:,} tombstones checked against the ledger",
                highlight=False,
            )
            if v.rows_not_covered:
                console.print(
                    f"[yellow]warning:[/] {v.rows_not_covered:,} rows were stored before content commitments "
                    "(schema revision 0003): no content commitment covers them",
                    highlight=False,
                )
            for failure in v.failures:
                console.print(f"[red]failure:[/] {failure}", highlight=False, soft_wrap=True)
            if v.failure_count > len(v.failures):
                console.print(f"[red]... and {v.failure_count - len(v.failures)} more[/]", highlight=False)
    raise typer.Exit(EXIT_VERIFIED if ok else EXIT_NOT_VERIFIED)


def run_verify(
    verify_ledger: Any,
    source: Any,
    log_keys: Any,
    trusted_note: str | None,
    witnesses: Any,
    proofs: int | None,
    *,
    quiet: bool,
) -> Any:
    def run(progress: Callable[[int, int], None] | None) -> Any:
        return verify_ledger(
            source, log_keys, trusted_checkpoint=trusted_note, witnesses=witnesses, proofs=proofs, progress=progress
        )

    if quiet or not err_console.is_terminal:
        return run(None)
    columns = (TextColumn("events"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("download", total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def print_verdict(verdict: Any) -> None:
    mark = "[bold green]VERIFIED[/]" if verdict.ok else "[bold red]NOT VERIFIED[/]"
    console.print(f"{mark}  log {verdict.origin} from {verdict.source}", highlight=False)
    rows: list[tuple[str, Cell]] = []  # label, value
    if verdict.tree_size is not None:
        rows.append(("tree size", f"{verdict.tree_size:,}"))
        rows.append(("root hash", verdict.root_hash or ""))
        rows.append(("signed by", ", ".join(verdict.log_signers) or "-"))
    if verdict.trusted_size is not None:
        rows.append(("trusted checkpoint", f"size {verdict.trusted_size:,}"))
    if verdict.witnessed_size is not None:
        rows.append(("witnessed", f"size {verdict.witnessed_size:,} by {', '.join(verdict.witness_signers)}"))
    by_kind = ", ".join(f"{kind} {count:,}" for kind, count in sorted(verdict.events_by_kind.items()))
    rows.append(("events checked", f"{verdict.events_checked:,}" + (f" ({by_kind})" if by_kind else "")))
    rows.append(("root recomputed", "yes" if verdict.root_recomputed else "no"))
    rows.append(("inclusion proofs", f"{verdict.inclusion_proofs_checked:,} checked"))
    rows.append(("consistency proofs", f"{verdict.consistency_proofs_checked:,} checked"))
    console.print(fields(rows))
    for warning in verdict.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for failure in verdict.failures:
        console.print(f"[red]failure:[/] {failure}", highlight=False, soft_wrap=True)
    if not verdict.ok:
        console.print(f"[bold red]{verdict.failure_count} check(s) failed[/]")
