"""``ReportService``: write a report of a kind, year, language and format; verify one against the ledger.

``generate`` gathers the facts (signing each region's checkpoint), builds the report, draws its charts and writes
``<kind>-<year>-<lang>.<format>`` into a folder (Markdown also writes its chart PNGs beside it); the access copy
is ``access-<subject>-<YYYYMMDD>-<lang>.<format>``. The same call serves `onshore report` and ``POST /v1/reports``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onshore import clock
from onshore.border import dates
from onshore.errors import InputError
from onshore.reports import charts, render
from onshore.reports.access import build_access
from onshore.reports.build import build, check_kind
from onshore.reports.facts import gather

if TYPE_CHECKING:
    from onshore.runtime import Runtime

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    kind: str
    year: int
    lang: str
    format: str
    checkpoints: list[dict[str, Any]]
    figures: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "year": self.year,
            "lang": self.lang,
            "format": self.format,
            "checkpoints": [{k: c[k] for k in ("region", "size", "root")} for c in self.checkpoints],
            "figures": self.figures,
        }


class ReportService:
    """Reports over the runtime's regions, ledgers and registers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def generate(
        self,
        kind: str,
        year: int | None,
        lang: str,
        fmt: str,
        out_dir: Path,
        *,
        jurisdiction: str = "CN",
        as_of: dt.date | None = None,
        subject: str | None = None,
        actor_role: str = "officer",
        progress: Progress | None = None,
    ) -> WrittenReport:
        """Write the report (see the module docstring) and return where, with its checkpoints and figures.

        ``subject`` (and the ``actor_role`` asking, recorded in the ledger) is for the access copy only, which
        takes no ``year`` (it is of the day it is written); every other report takes a year and no subject.

        Raises:
            InputError: unknown kind, language or format, a year outside 1970..2199, an access copy without a
                subject or another report with one.
            NotFoundError: no region of ``jurisdiction``, an unknown subject, or the pack asks for no such report.
            ConfigError: PDF asked and WeasyPrint cannot run.
        """
        check_kind(kind, lang)
        render.check_format(fmt)
        if (subject is None) == (kind == "access") or (year is None) != (kind == "access"):
            raise InputError("an access copy names one subject and no year; every other report a year, no subject")
        if year is not None and not dates.EARLIEST.year <= year <= dates.LATEST.year:
            raise InputError(f"year {year} is outside {dates.EARLIEST.year}..{dates.LATEST.year}")
        step = progress or (lambda _what: None)
        pack = self.runtime.rulebook.for_jurisdiction(jurisdiction)
        pngs: dict[str, bytes] = {}
        if subject is not None:
            report = build_access(
                self.runtime, subject, lang, jurisdiction=jurisdiction, actor_role=actor_role, progress=step
            )
            stem = f"access-{subject}-{report['as_of'].replace('-', '')}-{lang}"
        else:
            assert year is not None
            tz = pack.pack.outbound.timezone if pack.pack.outbound is not None else "UTC"
            today = dates.local_date(clock.now(), tz)
            as_of = as_of or min(today, dt.date(year, 12, 31))
            facts = gather(self.runtime, jurisdiction, year, as_of, step)
            report = build(facts, pack, kind, lang)
            step("charts")
            pngs["monthly"] = charts.monthly_chart(facts.monthly, year, lang)
            if kind in ("outbound", "selfassessment"):
                statuses = self.runtime.settings.processor.statuses()
                day = as_of if kind == "selfassessment" else None
                pngs["thresholds"] = charts.thresholds_chart(report["figures"], pack, year, lang, statuses, day)
            stem = f"{kind}-{year}-{lang}"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stem}.{fmt}"
        step(f"writing {path.name}")
        if fmt == "md":
            refs = {}
            for name, png in pngs.items():
                (out_dir / f"{stem}-{name}.png").write_bytes(png)
                refs[name] = f"{stem}-{name}.png"
            path.write_text(render.markdown(report, refs), encoding="utf-8")
        else:
            md = render.markdown(report, {name: render.data_uri(png) for name, png in pngs.items()})
            page = render.to_html(md, report["title"], lang)
            if fmt == "html":
                path.write_text(page, encoding="utf-8")
            else:
                path.write_bytes(render.pdf(page))
        return WrittenReport(path, kind, report["year"], lang, fmt, report["checkpoints"], report["figures"])
