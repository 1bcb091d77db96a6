"""The schema of a rule pack's ``outbound:`` section: what the border gate needs to know, as data.

The gate (``onshore.border.gate``) interprets this section; no threshold, article or country list lives in
code. The section holds:

- ``timezone``: the legal calendar (counting windows start at local midnight on 1 January);
- ``domestic``: destinations that are not abroad (a transfer there is not outbound);
- ``routes``: the legal routes a transfer can take, each of one ``kind``:
  ``basis`` (needs an approved transfer basis of that route: security assessment, standard contract,
  certification, SCC, BCR, derogation...), ``automatic`` (granted by the rule that names it: the volume
  exemption, free flow of non-personal data) or ``adequacy`` (the destination is on the adequacy list);
  with validity periods by approval date and the re-application window;
- ``classes``: what a data class always needs, whatever the counts (important data needs a security
  assessment, Art. 11), and the transforms it always gets (external images: anonymise faces and plates);
- ``thresholds``: volume rules with effective-date ranges, counting windows and bands of people counted;
- ``adequacy``, ``derogations``: the EU's adequacy list and Art. 49 derogations;
- ``basis_scope``: the rule that a transfer may not exceed its basis's scope (Art. 12).

Routes, class rules and thresholds may be scoped to the processor's status (``processor_status``: applies only
to a processor with every status listed; ``unless_processor_status``: only to one with none of them). The one
status today is ``ciio`` (``processor.ciio`` in the settings): the 2024 Provisions' volume exemption and
thresholds are for non-CIIOs, and a CIIO needs an assessment for any personal information.

Every rule carries ``source`` (instrument, article, confidence). Rules whose confidence is ``U`` are held
back unless switched on in ``rules.enable_unconfirmed``, like every other rule of a pack.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from onshore.rules.base import Category, Source, _Rule, _Strict

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_JURISDICTION = re.compile(r"^[A-Z]{2,3}$")


ProcessorStatus = Literal["ciio"]


class _ProcessorScoped(_Strict):
    """Scoping by the processor's own status (a CIIO is treated differently by the 2024 Provisions)."""

    processor_status: list[ProcessorStatus] = Field(
        default_factory=list, description="applies only to a processor with every status listed"
    )
    unless_processor_status: list[ProcessorStatus] = Field(
        default_factory=list, description="applies only to a processor with none of these statuses"
    )

    def applies_to_processor(self, statuses: frozenset[str]) -> bool:
        """Whether the rule applies to a processor with ``statuses``."""
        return set(self.processor_status) <= statuses and not statuses & set(self.unless_processor_status)


class _OutboundRule(_Rule):
    """A rule of the outbound section: the id, source and held-back logic of every pack rule, plus its citation."""

    @property
    def article(self) -> str:
        """``instrument article`` as decisions cite it."""
        return f"{self.source.instrument} {self.source.article}"


class DateRange(_Strict):
    """Inclusive range of local dates; ``end: null`` is open-ended."""

    start: dt.date
    end: dt.date | None = None

    def contains(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"date range ends ({self.end}) before it starts ({self.start})")
        return self


class RouteKind(StrEnum):
    """How a route is satisfied. Code knows these three kinds; the routes themselves are pack data."""

    BASIS = "basis"  # an approved transfer basis of this route, in scope
    AUTOMATIC = "automatic"  # the rule naming the route grants it (volume exemption, free flow)
    ADEQUACY = "adequacy"  # the destination is on the pack's adequacy list


class Validity(_OutboundRule):
    """How long an approval of a route issued within ``issued`` lasts, and when to re-apply."""

    issued: DateRange = Field(description="approvals issued on these dates get this validity")
    years: int = Field(ge=1, le=50)
    reapply_working_days: int | None = Field(
        default=None, ge=1, description="re-apply (or extend) within this many working days before expiry"
    )


class Route(_ProcessorScoped):
    """One legal route of transfer (PIPL Art. 38; GDPR Arts 45-49)."""

    id: str
    title: str
    kind: RouteKind
    source: Source
    available: DateRange | None = Field(default=None, description="dates on which the route exists at all")
    validity: list[Validity] = Field(default_factory=list)
    derogations: bool = Field(default=False, description="a basis of this route names one of `derogations`")
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"route id {v!r} must be lower_snake_case")
        return v


class TransformSpec(_Strict):
    """A named transform (see ``onshore.deid.transforms``) with its parameters."""

    name: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"transform name {v!r} must be lower_snake_case")
        return v


class ClassRule(_OutboundRule, _ProcessorScoped):
    """What a data class needs to leave: it matches a class carrying any listed category or tag.

    ``routes``: the routes of which one must be satisfied (``[]``: never leaves; omitted: no route is
    required by this rule, it only adds ``transforms``).
    """

    categories: list[Category] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    effective: DateRange | None = None
    routes: list[str] | None = None
    transforms: list[TransformSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _selects_something(self) -> ClassRule:
        if not self.categories and not self.tags:
            raise ValueError(f"class rule {self.id!r} must name categories or tags")
        if self.routes is None and not self.transforms:
            raise ValueError(f"class rule {self.id!r} must name routes or transforms")
        return self


Counter = Literal["pi", "pi_non_sensitive", "sensitive_pi", "processor_pi"]
Window = Literal["current_year", "previous_year", "all_time"]


class Band(_Strict):
    """From ``at_least`` people counted (up to the next band), one of ``routes`` is needed."""

    at_least: int = Field(ge=0)
    routes: list[str]


class ThresholdRule(_OutboundRule, _ProcessorScoped):
    """A volume rule: count distinct people in a window, pick the band, require its routes.

    Counters: ``pi`` people whose personal information (sensitive included) was provided abroad;
    ``pi_non_sensitive`` people whose non-sensitive PI was; ``sensitive_pi`` people whose sensitive PI was;
    ``processor_pi`` people whose PI the processor holds at all (not only abroad).
    Windows: since 1 January of the ``current_year`` or of the ``previous_year`` of the transfer date, or
    ``all_time``. The people of the request itself are added to the count ("would cross").
    """

    effective: DateRange
    counter: Counter
    window: Window
    applies_to: list[Category] = Field(min_length=1, description="class categories the rule applies to")
    bands: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _bands_ordered(self) -> ThresholdRule:
        starts = [b.at_least for b in self.bands]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError(f"threshold rule {self.id!r}: bands must start at 0 and increase strictly")
        return self

    def band(self, people: int) -> Band:
        """The band ``people`` falls in."""
        chosen = self.bands[0]
        for band in self.bands:
            if people >= band.at_least:
                chosen = band
        return chosen


class DomesticRule(_OutboundRule):
    """Destinations that are not abroad: a transfer there is not outbound."""

    jurisdictions: list[str] = Field(min_length=1)

    @field_validator("jurisdictions")
    @classmethod
    def _codes_ok(cls, v: list[str]) -> list[str]:
        for code in v:
            if not _JURISDICTION.match(code):
                raise ValueError(f"jurisdiction {code!r} must be 2-3 upper-case letters")
        return v


class AdequateCountry(_Strict):
    country: str
    name: str
    decision: str | None = None
    scope: Literal["full", "partial"] = Field(
        default="full", description="partial: only some recipients (e.g. certified ones): needs a recorded basis"
    )
    condition: str | None = None

    @field_validator("country")
    @classmethod
    def _code_ok(cls, v: str) -> str:
        if not _JURISDICTION.match(v):
            raise ValueError(f"country {v!r} must be 2-3 upper-case letters")
        return v


class AdequacyRule(_OutboundRule):
    """Third countries with an adequacy decision (GDPR Art. 45): the ``route`` is granted for them."""

    route: str
    countries: list[AdequateCountry] = Field(min_length=1)

    def entry(self, country: str) -> AdequateCountry | None:
        return next((c for c in self.countries if c.country == country), None)


class Derogation(_OutboundRule):
    """A derogation (GDPR Art. 49) a basis of the ``derogation`` route may invoke, with its limits.

    ``attestations`` are facts the officer must record on the basis (``explicit_consent_recorded``...).
    """

    key: str
    max_transfers: int | None = Field(default=None, ge=1, description="1: not repetitive")
    max_people: int | None = Field(default=None, ge=1, description="a limited number of data subjects (policy)")
    attestations: list[str] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"derogation key {v!r} must be lower_snake_case")
        return v


class ScopeRule(_OutboundRule):
    """A transfer may not exceed the purpose, recipient, destination, data types and scale of its basis."""


class OutboundRules(_Strict):
    """The ``outbound:`` section of a rule pack."""

    timezone: str = Field(description="IANA zone of the legal calendar, e.g. Asia/Shanghai")
    domestic: DomesticRule
    basis_scope: ScopeRule
    routes: list[Route] = Field(min_length=1)
    classes: list[ClassRule] = Field(min_length=1)
    thresholds: list[ThresholdRule] = Field(default_factory=list)
    adequacy: AdequacyRule | None = None
    derogations: list[Derogation] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone_ok(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {v!r} is not an IANA zone (e.g. Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _references_resolve(self) -> OutboundRules:
        route_ids = [r.id for r in self.routes]
        if len(set(route_ids)) != len(route_ids):
            raise ValueError("outbound.routes: duplicate route id")
        known = set(route_ids)
        seen: set[str] = set()
        for rule in self.rules():
            if rule.id in seen:
                raise ValueError(f"outbound rule {rule.id!r}: duplicate rule id")
            seen.add(rule.id)
        referenced: list[tuple[str, str]] = []
        for c in self.classes:
            referenced += [(c.id, r) for r in c.routes or []]
        for t in self.thresholds:
            referenced += [(t.id, r) for band in t.bands for r in band.routes]
        if self.adequacy is not None:
            referenced.append((self.adequacy.id, self.adequacy.route))
        for rule_id, route in referenced:
            if route not in known:
                raise ValueError(f"outbound rule {rule_id!r}: route {route!r} is not in outbound.routes")
        keys = [d.key for d in self.derogations]
        if len(set(keys)) != len(keys):
            raise ValueError("outbound.derogations: duplicate key")
        return self

    def rules(self) -> list[_OutboundRule]:
        """Every rule of the section (for id checks and listings)."""
        extra: list[_OutboundRule] = [self.adequacy] if self.adequacy is not None else []
        validities = [v for r in self.routes for v in r.validity]
        return [
            self.domestic,
            self.basis_scope,
            *validities,
            *self.classes,
            *self.thresholds,
            *extra,
            *self.derogations,
        ]

    def route(self, route_id: str) -> Route:
        """The route called ``route_id``.

        Raises:
            KeyError: no such route (the message lists the valid ids).
        """
        for r in self.routes:
            if r.id == route_id:
                return r
        raise KeyError(f"route {route_id!r} is not in the pack; valid: {', '.join(r.id for r in self.routes)}")

    def instruments_used(self) -> set[str]:
        """The instrument ids the section cites (checked against the pack's ``instruments``)."""
        used = {rule.source.instrument for rule in self.rules()}
        used |= {r.source.instrument for r in self.routes}
        return used
