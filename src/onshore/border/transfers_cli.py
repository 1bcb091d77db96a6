"""`onshore export list` and `onshore export import`: the transfer list and the import of earlier transfers."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer

from onshore.border.cli import _date, _with_border
from onshore.cli_support import ConfigOption, JsonOption, cli_errors, console, print_json
from onshore.cli_tables import Col, data_table, number, wrapped
from onshore.errors import InputError

MAX_IMPORT_BYTES = 256 * 1024 * 1024
IMPORT_COLUMNS = ("subject", "date", "kind", "destination", "recipient")


def read_import_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of an import file (CSV with a header: subject,date,kind,destination,recipient[,purpose][,basis]).

    Raises:
        InputError: unreadable, too large, or a required column is missing.
    """
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise InputError(f"{path} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split it")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.__class__.__name__})") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(
            f"{path}: the header lacks column(s) {', '.join(missing)}; needed: {', '.join(IMPORT_COLUMNS)}"
        )
    return list(reader)


def add_transfer_commands(export_app: typer.Typer) -> None:
    """Register `list` and `import` on the `export` group."""

    @export_app.command("list")
    def export_list(
        region: Annotated[str, typer.Option(help="the region")] = "cn",
        status: Annotated[str | None, typer.Option(help="released, denied or imported")] = None,
        since: Annotated[str | None, typer.Option(help="from this date, YYYY-MM-DD")] = None,
        until: Annotated[str | None, typer.Option(help="up to this date, YYYY-MM-DD")] = None,
        destination: Annotated[str | None, typer.Option(help="only to this country")] = None,
        recipient: Annotated[str | None, typer.Option(help="only to this recipient")] = None,
        limit: Annotated[int, typer.Option(help="at most this many (1..1000)")] = 100,
        config: ConfigOption = None,
        json_out: JsonOption = False,
    ) -> None:
        """List transfers abroad: releases, denials (with the reasons that failed) and imported earlier transfers.

        Example: onshore export list --region cn --status denied --since 2026-01-01
        """
        from onshore.border.transfers import TransferFilter

        def run(border: Any) -> list[dict[str, Any]]:
            where = TransferFilter(
                status=status,
                since=_date(since, "--since"),
                until=_date(until, "--until"),
                destination=destination,
                recipient=recipient,
                limit=limit,
            )
            return list(border.list_transfers(region, where))

        with cli_errors():
            rows = _with_border(config, run)
        if json_out:
            print_json({"transfers": rows})
            return
        if not rows:
            console.print("no transfer matches")
            return
        columns: list[Col | str] = ["date", "transfer", "status", "to", "purpose", number("records"), number("people"),
                   wrapped("what failed")]  # fmt: skip
        table = data_table(columns)
        for t in rows:
            status_text = t["status"] if t["verdict"] in (None, "allow") else f"{t['status']} ({t['verdict']})"
            failed = "\n".join(t["denied_reasons"])
            if t["met_in_denied"]:
                failed += f"\n(and {t['met_in_denied']} condition(s) met)"
            table.add_row(
                t["date"],
                t["transfer_id"],
                status_text,
                f"{t['recipient']} → {t['destination']}",
                t["purpose"],
                t["records"],
                t["people"],
                failed or None,
            )
        console.print(table)

    @export_app.command("import")
    def export_import(
        file: Annotated[Path, typer.Argument(help="CSV: subject,date,kind,destination,recipient[,purpose][,basis]")],
        region: Annotated[str, typer.Option(help="the region whose people they were")] = "cn",
        config: ConfigOption = None,
        json_out: JsonOption = False,
    ) -> None:
        """Record transfers made before onshore, per person and date, so the counting windows start right.

        `subject` is the person's subject id in onshore (`onshore subject owner`); kind is pi or sensitive.
        All rows or none are recorded, with one ledger event.

        Example: onshore export import earlier-transfers.csv --region cn
        """
        with cli_errors():
            rows = read_import_csv(file)
            summary = _with_border(config, lambda b: b.import_history(region, rows))
        if json_out:
            print_json(summary)
        else:
            console.print(
                f"imported {summary['rows']} rows: {summary['people_pi']} people (PI), {summary['people_sensitive']} "
                f"(sensitive PI) in {len(summary['transfers'])} transfers; ledger index {summary['ledger_index']}"
            )
