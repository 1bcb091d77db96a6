"""Assemble a report from its facts: the pack's items (with their confidence tags), the figures computed from the
ledger, and the sections read from the registers and stores. The result is plain data the templates render.

Kinds: ``annual`` (Provisions Art. 14), ``outbound`` (the Art. 15 supplement), ``inventory`` (the record of
processing: category × purpose × region × retention × count), ``risk`` (the Art. 13 risk assessment) and
``selfassessment`` (the self-assessment filed with a security-assessment declaration, 2022 Measures Art. 5). The
subject's access copy (``access``) is assembled by ``reports.access`` from the same envelope and items.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from onshore import clock
from onshore.errors import InputError, NotFoundError
from onshore.reports import figures as figures_mod
from onshore.reports.facts import ReportFacts
from onshore.reports.i18n import LANGS, RISK_CHECKS, confidence_text, figure_label, word
from onshore.rules.loader import LoadedPack
from onshore.rules.reports import ReportRule

KINDS = ("annual", "outbound", "inventory", "risk", "selfassessment", "access")
FORMAT_LINE = "onshore-report/1"


def check_kind(kind: str, lang: str) -> None:
    """Raises InputError for an unknown report kind or language."""
    if kind not in KINDS:
        raise InputError(f"report kind {kind!r} is unknown; valid: {', '.join(KINDS)}")
    if lang not in LANGS:
        raise InputError(f"language {lang!r} is not offered; valid: {', '.join(LANGS)}")


def rule_of(pack: LoadedPack, kind: str) -> ReportRule | None:
    reports = pack.pack.reports
    if kind == "inventory":
        return None
    rule = getattr(reports, kind, None) if reports is not None else None
    if rule is None:
        raise NotFoundError(f"rule pack {pack.pack.pack} asks for no {kind} report")
    return rule


def _sections(facts: ReportFacts, figures: dict[str, int]) -> dict[str, Any]:
    by_basis: dict[str, dict[str, int]] = {}
    for key, value in figures.items():
        if key.startswith("outbound.basis."):
            basis, _, name = key.removeprefix("outbound.basis.").rpartition(".")
            by_basis.setdefault(basis, {})[name] = value
    return {
        "profile": facts.profile,
        "inventory": facts.inventory,
        "storage": facts.storage,
        "retention": facts.retention,
        "provision": facts.registers["provision"],
        "incidents": facts.registers["incident"],
        "complaints": facts.registers["complaint"],
        "complaints_transfer": [c for c in facts.registers["complaint"] if c.get("about_transfer")],
        "rights": facts.registers["rights_request"],
        "bases": [b for b in facts.bases if b["id"] in by_basis or b["status_on_date"] == "approved"],
        "outbound_by_basis": [
            {
                "basis": basis,
                **{k: by_basis[basis].get(k, 0) for k in ("releases", "records", "people_pi", "people_sensitive")},
            }
            for basis in sorted(by_basis)
        ],
        "denials": [t for t in facts.transfers if t["status"] == "denied" or t["verdict"] == "partial"],
        "risks": risk_findings(facts, figures),
    }


def risk_findings(facts: ReportFacts, figures: dict[str, int]) -> list[dict[str, Any]]:
    """The risk checks (``i18n.RISK_CHECKS``) with the value each is read from and whether it was observed.

    A check on a figure is ledger-derived; ``important_records`` is read from the stores (the inventory).
    """
    important = sum(row["records"] for row in facts.inventory if "important" in row["categories"].split(","))
    values = {**figures, "important_records": important}
    return [{"check": key, "value": values.get(key, 0), "observed": values.get(key, 0) > 0} for key in RISK_CHECKS]


def _figure_rows(keys: list[str], figures: dict[str, int], lang: str) -> list[dict[str, Any]]:
    return [{"key": k, "label": figure_label(k, lang), "value": figures.get(k, 0)} for k in keys]


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def items_of(
    rule: ReportRule, figures: dict[str, int], lang: str, extra: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The rule's items as plain data, each with its figure rows; ``extra`` adds keys per listed figure key."""
    out = []
    for item in rule.items:
        keys = [k for key in item.figures for k in (extra or {}).get(key, [key])]
        if "outbound_by_basis" in item.sections:
            keys += sorted(k for k in figures if k.startswith("outbound.basis."))
        out.append(
            {
                "id": item.id,
                "title": item.title.get(lang) or next(iter(item.title.values())),
                "confidence": item.source.confidence.value,
                "confidence_text": confidence_text(item.source.confidence.value, lang),
                "source": f"{item.source.instrument} {item.source.article}",
                "note": item.source.note or "",
                "figures": _figure_rows(keys, figures, lang),
                "sections": list(item.sections),
            }
        )
    return out


def envelope(kind: str, lang: str, year: int, jurisdiction: str, as_of: dt.date, pack: LoadedPack) -> dict[str, Any]:
    """What every report states about itself: format line fields, pack and when it was written."""
    return {
        "format": FORMAT_LINE,
        "kind": kind,
        "lang": lang,
        "year": year,
        "jurisdiction": jurisdiction,
        "as_of": as_of.isoformat(),
        "generated_at": dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC).isoformat(timespec="seconds"),
        "pack": f"{pack.pack.pack} {pack.pack.version}",
        "subject": None,
    }


def build(facts: ReportFacts, pack: LoadedPack, kind: str, lang: str) -> dict[str, Any]:
    """The report of ``kind`` in ``lang`` (see the module docstring).

    Raises:
        InputError: unknown kind or language. NotFoundError: the pack asks for no such report.
    """
    check_kind(kind, lang)
    if kind == "access":
        raise InputError("the access copy is written for one subject: reports.access.build_access")
    rule = rule_of(pack, kind)
    figures = figures_mod.compute(facts.events, facts.year, facts.timezone, facts.as_of)
    sections = _sections(facts, figures)
    if kind == "inventory":
        stated = ["store.records_stored", "collect.received", "delete.records_retention", "delete.records_erasure"]
        items: list[dict[str, Any]] = [
            {
                "id": "inventory",
                "title": word("inventory_title", lang),
                "confidence": "C",
                "confidence_text": "",
                "source": "",
                "note": "",
                "figures": _figure_rows(stated, figures, lang),
                "sections": ["inventory", "storage", "retention"],
            }
        ]
        title, source_text, due, recipient = word("inventory_title", lang), "", None, ""
    else:
        assert rule is not None
        items = items_of(rule, figures, lang)
        title = rule.title.get(lang) or next(iter(rule.title.values()))
        source_text = f"{rule.source.instrument} {rule.source.article}"
        due = None if rule.due is None else f"{facts.year}-{rule.due}"
        if rule.valid_months is not None:  # declare within the months after the self-assessment (Art. 5)
            due = _add_months(facts.as_of, rule.valid_months).isoformat()
        recipient = rule.recipient.get(lang, "")
    stated_keys = [str(f["key"]) for item in items for f in item["figures"]]
    return {
        **envelope(kind, lang, facts.year, facts.jurisdiction, facts.as_of, pack),
        "title": title,
        "source": source_text,
        "due": due,
        "recipient": recipient,
        "items": items,
        "sections": sections,
        "checkpoints": [c.to_dict() for c in facts.checkpoints],
        "figures": {k: figures.get(k, 0) for k in dict.fromkeys(stated_keys)},
        "monthly": facts.monthly,
        "has_unconfirmed": any(i["confidence"] == "U" for i in items),
    }
