"""What the gate answers: a decision per data class, with its reasons, and the decision for a whole request.

A ``Reason`` names the rule (its id in the rule pack) and the article it rests on, says what it found, whether
that condition was met, and carries the numbers it counted (people in a window, a basis's scale), so every
decision explains itself. ``failed_first`` orders reasons for a reader: what failed, then what was met.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from onshore.border.counters import PeopleCount
from onshore.border.requests import ExportRequest
from onshore.border.selection import DataClass
from onshore.rules.outbound import TransformSpec

Verdict = Literal["allow", "transform", "deny"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: the rule (id and article), what it found, whether it was met, and the numbers it counted.

    ``met`` is False unless the gate says otherwise: a reason of unknown outcome is shown as a failure.
    """

    rule: str
    article: str
    text: str
    numbers: Mapping[str, Any] = field(default_factory=dict)
    met: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "article": self.article, "text": self.text, "met": self.met}
        if self.numbers:
            out["numbers"] = dict(self.numbers)
        return out


@dataclass(frozen=True, slots=True)
class ClassDecision:
    data_class: DataClass
    decision: Verdict
    reasons: tuple[Reason, ...]
    basis_id: str | None = None
    transforms: tuple[TransformSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.data_class.to_dict(),
            "decision": self.decision,
            "basis": self.basis_id,
            "transforms": [t.model_dump() for t in self.transforms],
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class ExportDecision:
    """The gate's answer for a whole request."""

    request: ExportRequest
    at: dt.datetime
    day: dt.date
    pack: str
    outbound: bool
    classes: tuple[ClassDecision, ...]
    counts: tuple[PeopleCount, ...] = ()

    @property
    def verdict(self) -> str:
        """``allow`` (all classes leave, maybe transformed), ``partial``, ``deny`` or ``empty``."""
        if not self.classes:
            return "empty"
        denied = sum(1 for c in self.classes if c.decision == "deny")
        if denied == len(self.classes):
            return "deny"
        return "partial" if denied else "allow"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "outbound": self.outbound,
            "at": self.at.isoformat(),
            "date": self.day.isoformat(),
            "pack": self.pack,
            "request": self.request.public_dict(),
            "counted": [c.to_dict() for c in self.counts],
            "classes": [c.to_dict() for c in self.classes],
        }


def failed_first(reasons: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Reasons (as dicts) split into those that failed and those met, each in its order; a reason stored before
    reasons carried ``met`` counts as failed, so nothing that may have decided a denial is hidden."""
    failed = [r for r in reasons if not r.get("met", False)]
    return failed, [r for r in reasons if r.get("met", False)]


def reason_line(reason: Mapping[str, Any]) -> str:
    """``rule (article): text``, the one-line form of a reason."""
    return f"{reason['rule']} ({reason['article']}): {reason['text']}"
