"""`onshore report …`: write the reports the law asks for, and verify one against the ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from onshore.cli_support import (
    ConfigOption,
    JsonOption,
    cli_errors,
    console,
    err_console,
    finish_check,
    print_json,
    with_runtime,
)
from onshore.errors import InputError

report_app = typer.Typer(
    help="Annual report, outbound supplement, data inventory, risk assessment, self-assessment, a person's access "
    "copy; verify a report.",
    no_args_is_help=True,
)
YearOption = Annotated[int, typer.Option(help="the calendar year reported on")]
LangOption = Annotated[str, typer.Option(help="zh or en")]
FormatOption = Annotated[str, typer.Option("--format", help="md, html or pdf")]
OutOption = Annotated[Path, typer.Option("--out", help="folder to write into")]


def _as_of(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _generate(kind: str, year: int | None, lang: str, fmt: str, out: Path, as_of: str | None, config: Path | None,
              json_out: bool, jurisdiction: str, subject: str | None = None) -> None:  # fmt: skip
    from onshore.reports.service import ReportService

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    what = "access copy" if year is None else f"{kind} report {year}"
    with cli_errors(), Progress(*columns, console=err_console, disable=json_out, transient=True) as bar:
        task = bar.add_task(what)

        def step(doing: str) -> None:
            bar.update(task, description=f"{what}: {doing}")

        def run(rt: Any) -> dict[str, Any]:
            written = ReportService(rt).generate(
                kind, year, lang, fmt, out, jurisdiction=jurisdiction, as_of=_as_of(as_of), subject=subject,
                progress=step,
            )  # fmt: skip
            return written.to_dict()

        result = with_runtime(config, run)
    if json_out:
        print_json(result)
        return
    console.print(f"wrote [bold]{result['path']}[/]")
    for c in result["checkpoints"]:
        console.print(f"  from ledger {c['region']} at size {c['size']}, root {c['root']}", highlight=False)


def _command(kind: str, doc: str) -> None:
    def command(
        year: YearOption,
        lang: LangOption = "zh",
        fmt: FormatOption = "md",
        out: OutOption = Path("reports"),
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="pending requests counted as of (default today)")
        ] = None,
        jurisdiction: Annotated[str, typer.Option(help="the regions of this jurisdiction")] = "CN",
        config: ConfigOption = None,
        json_out: JsonOption = False,
    ) -> None:
        _generate(kind, year, lang, fmt, out, as_of, config, json_out, jurisdiction)

    command.__doc__ = doc
    report_app.command(kind)(command)


_command(
    "annual",
    "The annual report (Provisions Art. 14).\n\nExample: onshore report annual --year 2026 --lang zh --format pdf",
)
_command(
    "outbound",
    "The outbound supplement (Art. 15).\n\nExample: onshore report outbound --year 2026 --lang en --format html",
)
_command(
    "inventory",
    "The data inventory: category x purpose x region x retention x count.\n\n"
    "Example: onshore report inventory --year 2026",
)


_command(
    "risk",
    "The risk assessment of important-data processing (Provisions Art. 13).\n\n"
    "Example: onshore report risk --year 2026 --lang zh --format pdf",
)
_command(
    "selfassessment",
    "The self-assessment draft for a security-assessment declaration (2022 Measures Art. 5); --as-of is the\n"
    "assessment date (declare within the pack's months after it).\n\n"
    "Example: onshore report selfassessment --year 2026 --as-of 2026-06-10 --lang zh --format pdf",
)


@report_app.command("access")
def report_access(
    subject: Annotated[str, typer.Option(help="the person (their subject ref)")],
    lang: LangOption = "zh",
    fmt: FormatOption = "md",
    out: OutOption = Path("reports"),
    jurisdiction: Annotated[str, typer.Option(help="the pack whose wording and calendar the copy uses")] = "CN",
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """A person's access copy as a readable document (what is held, consents, transfers abroad); the request is
    a ledger event (as an officer's).

    Example: onshore report access --subject sub_1a2b --lang zh --format pdf
    """
    _generate("access", None, lang, fmt, out, None, config, json_out, jurisdiction, subject)


@report_app.command("verify")
def report_verify(
    report: Annotated[Path, typer.Argument(help="a report written by onshore (md, html or pdf)", exists=True)],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Recompute a report's figures from the ledger checkpoint it states; exit 1 naming each figure that differs.

    Example: onshore report verify reports/annual-2026-zh.pdf
    """
    from onshore.reports.verify import verify_report

    with cli_errors():
        verdict = with_runtime(config, lambda rt: verify_report(rt, report))
    finish_check(
        json_out,
        verdict.to_dict(),
        verdict.problems,
        f"report verified: {verdict.figures_checked} figures recomputed from the ledger checkpoints "
        + ", ".join(f"{c['region']}@{c['size']}" for c in verdict.checkpoints),
    )
