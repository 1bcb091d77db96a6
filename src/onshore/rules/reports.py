"""The schema of a rule pack's ``reports:`` section: which reports the law asks for, when, and what they hold.

Each report names its instrument and article, its due date and the items the law lists, each item with its own
source and confidence tag (the cn-auto annual report's items are [U]: the final text was not retrieved, so a
report shows them marked as unconfirmed). Items name the figures (``onshore.reports.figures``) and sections
they are filled from; the wording of an item is data here, never code.
"""

from __future__ import annotations

from pydantic import Field

from onshore.rules.base import Source, _Strict


class ReportItem(_Strict):
    """One item the law asks a report for."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    title: dict[str, str] = Field(description="the item's heading per language (zh, en)")
    source: Source
    figures: list[str] = Field(default_factory=list, description="figure keys stated under the item")
    sections: list[str] = Field(default_factory=list, description="register or list sections shown under it")


class ReportRule(_Strict):
    """A report the law asks for."""

    title: dict[str, str]
    source: Source
    due: str | None = Field(default=None, pattern=r"^\d{2}-\d{2}$", description="MM-DD each year, e.g. 12-15")
    due_source: Source | None = None
    recipient: dict[str, str] = Field(default_factory=dict, description="who it is filed with, per language")
    items: list[ReportItem] = Field(min_length=1)
    valid_months: int | None = Field(
        default=None, ge=1, le=36, description="months a report stays usable (a self-assessment before declaring)"
    )
    valid_source: Source | None = None


class ReportRules(_Strict):
    """The ``reports:`` section: reports by id (``annual``, ``outbound``, ``risk``, ``selfassessment``,
    ``access``)."""

    annual: ReportRule | None = None
    outbound: ReportRule | None = None
    risk: ReportRule | None = None
    selfassessment: ReportRule | None = None
    access: ReportRule | None = None

    def instruments_used(self) -> set[str]:
        used: set[str] = set()
        for rule in (self.annual, self.outbound, self.risk, self.selfassessment, self.access):
            if rule is None:
                continue
            used.add(rule.source.instrument)
            for extra in (rule.due_source, rule.valid_source):
                if extra is not None:
                    used.add(extra.instrument)
            used |= {item.source.instrument for item in rule.items}
        return used
