"""The schema of a rule pack (YAML), validated on load.

A rule pack is law as data: every rule names its legal source (instrument, article) and the
confidence tag of that fact in REGULATION.md (C confirmed, S secondary, U unconfirmed). Rules
tagged ``U`` are loaded but held back (``enabled: false``) unless the operator switches them on.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from onshore.rules.base import (
    _SIGNAL_PATTERN,
    SIGNAL_NAME,
    Category,
    Confidence,
    Instrument,
    Purpose,
    Source,
    ValueKind,
    _check_tags,
    _Rule,
    _Strict,
)
from onshore.rules.outbound import OutboundRules
from onshore.rules.reports import ReportRules

__all__ = [
    "SIGNAL_NAME",
    "Category",
    "Confidence",
    "Instrument",
    "OutboundRules",
    "Purpose",
    "Source",
    "ValueKind",
]


class SignalRule(_Rule):
    """Maps signals to categories, tags and the purposes they may be collected for."""

    signals: list[str] = Field(min_length=1)
    value: ValueKind = ValueKind.ANY
    categories: list[Category] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(min_length=1, description="the first is the default purpose")

    @field_validator("signals")
    @classmethod
    def _signals_ok(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SIGNAL_PATTERN.match(s):
                raise ValueError(f"signal {s!r} is neither a fleet-telemetry name nor a VSS path")
        return v

    @field_validator("tags")
    @classmethod
    def _tags_ok(cls, v: list[str]) -> list[str]:
        return _check_tags(v)

    @model_validator(mode="after")
    def _sensitive_implies_personal(self) -> SignalRule:
        if Category.SENSITIVE_PERSONAL in self.categories and Category.PERSONAL not in self.categories:
            raise ValueError("a sensitive_personal rule must also list personal")
        if Category.GENERAL in self.categories and len(self.categories) > 1:
            raise ValueError("general cannot be combined with another category")
        return self


class PrecisionRule(_Rule):
    """Coarsens values carrying a tag before storage (Art. 6(3) precision-range principle)."""

    tags: list[str] = Field(min_length=1)
    decimals: int = Field(ge=0, le=8, description="decimal places kept for coordinates")


class ZoneRule(_Rule):
    """A GeoJSON file of sensitive zones; a position inside one adds categories and tags."""

    file: str = Field(description="path relative to the pack file, or absolute")
    categories: list[Category] = Field(min_length=1)
    tags: list[str] = Field(min_length=1)


class DefaultRule(_Rule):
    """Applied to a signal no rule names: conservative, and reported."""

    categories: list[Category] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(min_length=1)


class ConsentPolicy(_Strict):
    """Which categories need consent before collection (default no-collection), and for how long."""

    required_for: list[Category]
    separate_for: list[Category] = Field(
        default_factory=list, description="categories that need separate (单独) consent"
    )
    source: Source
    durations: dict[str, float] = Field(
        default_factory=lambda: {"trip": 0.5, "7d": 7, "90d": 90, "365d": 365},
        description="the validity choices offered to the subject, name → days ('trip': one drive, at most this long)",
    )
    permanent_allowed_for: list[Category] = Field(
        default_factory=list,
        description="categories whose consent may be given until withdrawn; others must expire",
    )
    duration_source: Source | None = None


class SubjectRule(_Strict):
    """Who a datum is about when the vehicle does not say (issue: subject bindings)."""

    unknown: Literal["owner"] = "owner"
    source: Source


class RetentionRule(_Rule):
    """Delete stored data of these categories/tags (and purposes) after ``days``."""

    categories: list[Category] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(default_factory=list, description="empty: any purpose")
    days: float = Field(gt=0)

    @model_validator(mode="after")
    def _selects_something(self) -> RetentionRule:
        if not self.categories and not self.tags:
            raise ValueError(f"retention rule {self.id!r} must name categories or tags")
        return self


class ErasurePolicy(_Strict):
    deadline_working_days: int = Field(gt=0, description="deletion must complete within this many working days")
    source: Source


class Placement(StrEnum):
    """Where a camera looks: out of the vehicle or into the cabin."""

    EXTERNAL = "external"
    CABIN = "cabin"


_CAMERA_PATTERN = re.compile(r"^[a-z0-9*][a-z0-9_.\-*]{0,63}$")


class CameraRule(_Rule):
    """Classifies the frames of cameras whose ids match ``cameras`` (``*`` matches any characters).

    ``categories`` apply when faces or plates were found in the frame (and always for a cabin camera);
    ``categories_when_clear``, when given, apply to an external frame in which nothing was found.
    ``consent_exempt``: collection needs no consent from the vehicle's subject (the frame is about persons
    outside the vehicle, collected for driving safety and anonymised before anything else sees it).
    """

    cameras: list[str] = Field(min_length=1)
    placement: Placement
    categories: list[Category] = Field(min_length=1)
    categories_when_clear: list[Category] | None = None
    tags: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(min_length=1, description="the first is the default purpose")
    consent_exempt: bool = False

    @field_validator("cameras")
    @classmethod
    def _cameras_ok(cls, v: list[str]) -> list[str]:
        for c in v:
            if not _CAMERA_PATTERN.match(c):
                raise ValueError(f"camera pattern {c!r} must be lower case letters, digits, _ . - and *")
        return v

    @field_validator("tags")
    @classmethod
    def _tags_ok(cls, v: list[str]) -> list[str]:
        return _check_tags(v)


class RawFramePolicy(_Strict):
    """Whether the raw (not anonymised) frame is kept: encrypted, in the region, officer-only, briefly."""

    keep: bool = Field(default=False, description="false: the raw frame is dropped once anonymised")
    retention_days: float = Field(default=7, gt=0, le=90, description="raw frames are deleted after this")
    source: Source | None = None
    note: str | None = None


class FrameAnonymisation(_Strict):
    method: Literal["blur", "pixelate", "mask"] = "blur"
    padding: dict[Literal["face", "plate"], float] = Field(
        default_factory=lambda: {"face": 0.2, "plate": 0.15},  # type: ignore[arg-type]
        description="fraction of a box's size added on every side before hiding it",
    )

    @field_validator("padding")
    @classmethod
    def _padding_ok(cls, v: dict[str, float]) -> dict[str, float]:
        for kind, pad in v.items():
            if not 0 <= pad <= 1:
                raise ValueError(f"padding of {kind} must be between 0 and 1, not {pad}")
        return v


class FramePolicy(_Strict):
    """Camera frames: how they are anonymised and classified, and what happens in sensitive zones."""

    anonymise: FrameAnonymisation = Field(default_factory=FrameAnonymisation)
    cameras: list[CameraRule] = Field(min_length=1, description="first match wins")
    in_sensitive_zone: Literal["drop", "keep"] = Field(
        default="drop", description="drop: a frame taken inside a sensitive zone is not stored at all"
    )
    zone_source: Source | None = None
    hard_conditions: Literal["drop", "keep"] = Field(
        default="keep",
        description="drop: an external frame shot blurred or at night (where detection recall is measured lower) "
        "is not stored",
    )
    hard_conditions_source: Source | None = None
    raw: RawFramePolicy = Field(default_factory=RawFramePolicy)


class RulePack(_Strict):
    """One versioned rule pack for one jurisdiction."""

    pack: str
    version: str
    jurisdiction: str = Field(pattern=r"^[A-Z]{2,3}$")
    title: str
    schema_version: Literal[1] = 1
    instruments: dict[str, Instrument]
    purposes: list[Purpose] = Field(min_length=1)
    consent: ConsentPolicy
    default_signal: DefaultRule
    signals: list[SignalRule] = Field(default_factory=list)
    precision: list[PrecisionRule] = Field(default_factory=list)
    zones: list[ZoneRule] = Field(default_factory=list)
    subjects: SubjectRule | None = None
    retention: list[RetentionRule] = Field(default_factory=list)
    erasure: ErasurePolicy | None = None
    outbound: OutboundRules | None = None
    frames: FramePolicy | None = None
    reports: ReportRules | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> RulePack:
        purpose_ids = {p.id for p in self.purposes}
        seen: set[str] = set()
        rules: list[_Rule] = [self.default_signal, *self.signals, *self.precision, *self.zones, *self.retention]
        if self.frames is not None:
            rules += self.frames.cameras
            sources = [self.frames.zone_source, self.frames.hard_conditions_source, self.frames.raw.source]
            for source in sources:
                if source is not None and source.instrument not in self.instruments:
                    raise ValueError(f"frames: source instrument {source.instrument!r} is not in `instruments`")
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule {rule.id!r}: duplicate rule id")
            seen.add(rule.id)
            if rule.source.instrument not in self.instruments:
                raise ValueError(
                    f"rule {rule.id!r}: source instrument {rule.source.instrument!r} is not in `instruments`"
                )
            for purpose in getattr(rule, "purposes", []):
                if purpose not in purpose_ids:
                    raise ValueError(f"rule {rule.id!r}: purpose {purpose!r} is not declared in `purposes`")
        if self.reports is not None:
            unknown = self.reports.instruments_used() - set(self.instruments)
            if unknown:
                raise ValueError(f"reports: source instruments {sorted(unknown)} are not in `instruments`")
        if self.consent.source.instrument not in self.instruments:
            raise ValueError("consent: source instrument is not in `instruments`")
        claimed: dict[str, str] = {}
        for rule in self.signals:
            for s in rule.signals:
                if s in claimed:
                    raise ValueError(f"rule {rule.id!r}: signal {s!r} is already classified by {claimed[s]!r}")
                claimed[s] = rule.id
        return self
