"""The border gate: per data class, allow, allow after transforms, or deny — with the reasons that decided.

The gate is a pure function of the request, the data classes it concerns, the people counted, the recorded
bases and their usage, and the moment ``at`` (so tests and the officer can ask "what if on that date").
It reads no database; the service gathers its inputs.

For each class:

1. a destination in the pack's ``domestic`` list is not outbound: allow;
2. the pack's class rules in force that match the class (by category or tag) each require one of their
   routes and add their transforms; the threshold rules in force that apply to the class's categories count
   people in their window (already provided plus this request) and require the routes of the band reached;
3. no requirement at all: **deny** (default deny);
4. a requirement is met by an ``automatic`` route available on that date, or by ``adequacy`` when the
   destination is fully adequate; the rest must all be met by ONE basis whose route every one of them
   accepts, approved and in force on that date, and inside its scope (purpose, recipient, destination,
   categories, tags, signals, people and records, derogation limits); none: **deny**, with why each basis
   failed;
5. the class's transforms (pack plus basis conditions) decide between ``allow`` and ``transform``.

Every reason names a rule id and its article; threshold reasons carry the numbers counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onshore.border import dates
from onshore.border.bases import TransferBasis
from onshore.border.counters import BasisUsage, PeopleCount
from onshore.border.decisions import ClassDecision, ExportDecision, Reason
from onshore.border.requests import ExportRequest
from onshore.border.selection import DataClass
from onshore.deid.transforms import merge_specs
from onshore.errors import RulePackError
from onshore.rules.loader import LoadedPack
from onshore.rules.outbound import ClassRule, OutboundRules, RouteKind, ThresholdRule, TransformSpec


@dataclass(frozen=True, slots=True)
class _Requirement:
    rule: str
    article: str
    routes: tuple[str, ...]
    text: str
    numbers: Mapping[str, Any]


class BorderGate:
    """The gate for one rule pack.

    Raises:
        RulePackError: the pack has no ``outbound`` section, or a rule cites an instrument it does not list.
    """

    def __init__(self, pack: LoadedPack, processor_status: frozenset[str] = frozenset()) -> None:
        if pack.pack.outbound is None:
            raise RulePackError(f"rule pack {pack.pack.pack} has no outbound section: the gate cannot decide")
        self.pack = pack
        self.rules: OutboundRules = pack.pack.outbound
        missing = self.rules.instruments_used() - set(pack.pack.instruments)
        if missing:
            raise RulePackError(
                f"rule pack {pack.pack.pack}: outbound rules cite instruments not in `instruments`: {sorted(missing)}"
            )
        enabled = pack.enabled_overrides
        # the processor's own status (a CIIO) selects the rules meant for it: law in the pack, status in settings
        self.processor_status = processor_status
        self.class_rules = [
            r for r in self.rules.classes if (r.active or r.id in enabled) and r.applies_to_processor(processor_status)
        ]
        self.thresholds = [
            t
            for t in self.rules.thresholds
            if (t.active or t.id in enabled) and t.applies_to_processor(processor_status)
        ]
        self.domestic = frozenset(self.rules.domestic.jurisdictions)
        self.routes = {r.id: r for r in self.rules.routes}
        adequacy = self.rules.adequacy
        self.adequacy = adequacy if adequacy is not None and (adequacy.active or adequacy.id in enabled) else None
        self.derogations = {d.key: d for d in self.rules.derogations if d.active or d.id in enabled}
        self.label = f"{pack.pack.pack} {pack.pack.version}"

    @property
    def timezone(self) -> str:
        return self.rules.timezone

    def is_outbound(self, request: ExportRequest) -> bool:
        return request.destination not in self.domestic

    def counting_needs(self, at: dt.datetime) -> list[tuple[str, dt.date | None]]:
        """The ``(counter, window start)`` pairs the thresholds in force on ``at`` need counted."""
        day = dates.local_date(at, self.timezone)
        return sorted(
            {(t.counter, dates.window_start(t.window, day)) for t in self.thresholds if t.effective.contains(day)},
            key=lambda n: (n[0], n[1] or dt.date.min),
        )

    def decide(
        self,
        request: ExportRequest,
        classes: Sequence[DataClass],
        counts: Mapping[tuple[str, dt.date | None], PeopleCount],
        bases: Sequence[TransferBasis],
        usage: Mapping[str, BasisUsage],
        at: dt.datetime,
    ) -> ExportDecision:
        """Decide every class of a request (see the module docstring for the order of checks)."""
        day = dates.local_date(at, self.timezone)
        outbound = self.is_outbound(request)
        # a basis's scale counts every record of the request inside its categories, not one class at a time
        in_scope = {
            b.id: sum(c.records for c in classes if set(c.categories) <= {k.value for k in b.spec.scope.categories})
            for b in bases
        }
        decided = tuple(
            self._decide_class(request, c, counts, bases, usage, in_scope, day)
            if outbound
            else self._domestic(request, c)
            for c in classes
        )
        return ExportDecision(
            request=request,
            at=at,
            day=day,
            pack=self.label,
            outbound=outbound,
            classes=decided,
            counts=tuple(counts[k] for k in sorted(counts, key=lambda n: (n[0], n[1] or dt.date.min))),
        )

    def _domestic(self, request: ExportRequest, c: DataClass) -> ClassDecision:
        rule = self.rules.domestic
        text = f"destination {request.destination} is not abroad for {self.pack.jurisdiction}: not an outbound transfer"
        return ClassDecision(c, "allow", (Reason(rule.id, rule.article, text, met=True),))

    def _requirements(
        self, c: DataClass, counts: Mapping[tuple[str, dt.date | None], PeopleCount], day: dt.date
    ) -> tuple[list[_Requirement], list[TransformSpec], list[Reason]]:
        cats, tags = set(c.categories), set(c.tags)
        requirements: list[_Requirement] = []
        transforms: list[TransformSpec] = []
        notes: list[Reason] = []
        for rule in self.class_rules:
            if rule.effective is not None and not rule.effective.contains(day):
                continue
            if not (cats & {x.value for x in rule.categories} or tags & set(rule.tags)):
                continue
            transforms.extend(rule.transforms)
            if rule.routes is None:
                names = ", ".join(t.name for t in rule.transforms)
                text = f"class {_matched(rule, cats, tags)}: transforms {names}"
                notes.append(Reason(rule.id, rule.article, text, met=True))
                continue
            text = f"class {_matched(rule, cats, tags)} needs " + _routes_text(rule.routes)
            requirements.append(_Requirement(rule.id, rule.article, tuple(rule.routes), text, {}))
        for t in self.thresholds:
            if not t.effective.contains(day) or not cats & {x.value for x in t.applies_to}:
                continue
            count = counts[(t.counter, dates.window_start(t.window, day))]
            band = t.band(count.total)
            requirements.append(_threshold_requirement(t, count, band.at_least, band.routes, _next(t, band.at_least)))
        return requirements, transforms, notes

    def _decide_class(
        self,
        request: ExportRequest,
        c: DataClass,
        counts: Mapping[tuple[str, dt.date | None], PeopleCount],
        bases: Sequence[TransferBasis],
        usage: Mapping[str, BasisUsage],
        in_scope: Mapping[str, int],
        day: dt.date,
    ) -> ClassDecision:
        requirements, transforms, reasons = self._requirements(c, counts, day)
        if not requirements:
            text = (
                f"no outbound rule of {self.label} in force on {day} covers categories {','.join(c.categories)} "
                f"and tags {','.join(c.tags) or '-'}: default deny"
            )
            return ClassDecision(c, "deny", (*reasons, Reason("default-deny", f"{self.label}: no rule", text)))
        open_requirements: list[tuple[_Requirement, list[str]]] = []
        for req in requirements:
            available = [r for r in req.routes if self._available(r, day)]
            granted = self._granted(request, available)
            if granted is not None:
                reasons.append(Reason(req.rule, req.article, f"{req.text}: met by {granted}", req.numbers, met=True))
                continue
            needing_basis = [r for r in available if self.routes[r].kind is not RouteKind.AUTOMATIC]
            if not needing_basis:
                why = "never leaves" if not req.routes else f"none of {', '.join(req.routes)} exists on {day}"
                reasons.append(Reason(req.rule, req.article, f"{req.text}: {why}", req.numbers))
                return ClassDecision(c, "deny", tuple(reasons))
            open_requirements.append((req, needing_basis))
        basis: TransferBasis | None = None
        if open_requirements:
            acceptable = set(open_requirements[0][1])
            for _, routes in open_requirements[1:]:
                acceptable &= set(routes)
            basis, problems = self._find_basis(request, c, acceptable, bases, usage, in_scope, day)
            for req, _ in open_requirements:
                met = f"met by basis {basis.id} ({basis.route})" if basis is not None else "not met"
                reasons.append(Reason(req.rule, req.article, f"{req.text}: {met}", req.numbers, met=basis is not None))
            if basis is None:
                if not acceptable:
                    scope = self.rules.basis_scope
                    reasons.append(Reason(scope.id, scope.article, "no single route meets every requirement"))
                return ClassDecision(c, "deny", (*reasons, *problems))
            transforms.extend(basis.spec.conditions)
        merged = tuple(merge_specs(transforms))
        return ClassDecision(c, "transform" if merged else "allow", tuple(reasons), basis.id if basis else None, merged)

    def _available(self, route_id: str, day: dt.date) -> bool:
        route = self.routes[route_id]
        if not route.applies_to_processor(self.processor_status):
            return False
        return route.available is None or route.available.contains(day)

    def _granted(self, request: ExportRequest, routes: Sequence[str]) -> str | None:
        for route_id in routes:
            kind = self.routes[route_id].kind
            if kind is RouteKind.AUTOMATIC:
                return route_id
            if kind is RouteKind.ADEQUACY and self.adequacy is not None:
                entry = self.adequacy.entry(request.destination)
                if entry is not None and entry.scope == "full":
                    return f"{route_id} ({entry.name}, {self.adequacy.id} {self.adequacy.source.article})"
        return None

    def _find_basis(
        self,
        request: ExportRequest,
        c: DataClass,
        routes: set[str],
        bases: Sequence[TransferBasis],
        usage: Mapping[str, BasisUsage],
        in_scope: Mapping[str, int],
        day: dt.date,
    ) -> tuple[TransferBasis | None, list[Reason]]:
        candidates = [b for b in bases if request.basis is None or b.id == request.basis]
        scope = self.rules.basis_scope
        if not candidates:
            named = (
                f"basis {request.basis!r} is not recorded in region {request.region}"
                if request.basis
                else (f"no basis of route {' or '.join(sorted(routes)) or '-'} is recorded")
            )
            return None, [Reason(scope.id, scope.article, named)]
        problems: list[Reason] = []
        for basis in candidates:
            found = self._basis_problems(request, c, basis, routes, usage.get(basis.id), in_scope.get(basis.id, 0), day)
            if not found:
                return basis, []
            problems.extend(found)
        return None, problems

    def _basis_problems(
        self,
        request: ExportRequest,
        c: DataClass,
        basis: TransferBasis,
        routes: set[str],
        used: BasisUsage | None,
        records: int,
        day: dt.date,
    ) -> list[Reason]:
        scope_rule = self.rules.basis_scope
        rule, art = scope_rule.id, scope_rule.article
        b = basis.spec
        s = b.scope
        name = f"basis {basis.id}"
        if basis.route not in routes:
            return [Reason(rule, art, f"{name} is a {basis.route}; this class needs {' or '.join(sorted(routes))}")]
        status = basis.status_on(day)
        if status != "approved":
            when = {"expired": f" on {basis.expires_on}", "pending": f" until {basis.approved_on}"}.get(status, "")
            if status == "expired" and basis.validity_rule is not None:  # the pack's validity decided the expiry
                rule, art = basis.validity_rule, self._validity_article(basis) or art
            return [Reason(rule, art, f"{name} is {status}{when}")]
        out: list[Reason] = []
        if request.purpose not in s.purposes:
            out.append(Reason(rule, art, f"{name}: purpose {request.purpose} is outside {','.join(s.purposes)}"))
        if request.recipient != s.recipient:
            out.append(Reason(rule, art, f"{name}: recipient {request.recipient} is not the basis's recipient"))
        if request.destination not in s.destinations:
            dest = ",".join(s.destinations)
            out.append(Reason(rule, art, f"{name}: destination {request.destination} is outside {dest}"))
        outside = [x for x in c.categories if x not in {k.value for k in s.categories}]
        if outside:
            out.append(Reason(rule, art, f"{name}: categories {','.join(outside)} are outside its scope"))
        if s.tags and not set(c.tags) <= set(s.tags):
            extra = ",".join(sorted(set(c.tags) - set(s.tags)))
            out.append(Reason(rule, art, f"{name}: data types (tags) {extra} are outside its scope"))
        if s.signals and not set(c.signals) <= set(s.signals):
            extra = ",".join(sorted(set(c.signals) - set(s.signals)))
            out.append(Reason(rule, art, f"{name}: signals {extra} are outside its scope"))
        used = used or BasisUsage(basis.id, 0, c.people, 0, 0)
        people = used.people + used.new_people
        if s.max_people is not None and people > s.max_people:
            numbers = {"people_before": used.people, "people_new": used.new_people, "max_people": s.max_people}
            out.append(Reason(rule, art, f"{name}: {people} people would exceed its scale of {s.max_people}", numbers))
        if s.max_records is not None and used.records + records > s.max_records:
            total = used.records + records
            numbers = {"records_before": used.records, "records_new": records, "max_records": s.max_records}
            out.append(Reason(rule, art, f"{name}: {total} records would exceed its scale of {s.max_records}", numbers))
        if self.routes[basis.route].derogations:
            out.extend(self._derogation_problems(basis, used, people))
        if basis.route in {r.id for r in self.rules.routes if r.kind is RouteKind.ADEQUACY} and self.adequacy:
            entry = self.adequacy.entry(request.destination)
            if entry is None:
                out.append(
                    Reason(self.adequacy.id, self.adequacy.article, f"{request.destination} has no adequacy decision")
                )
        return out

    def _derogation_problems(self, basis: TransferBasis, used: BasisUsage, people: int) -> list[Reason]:
        key = basis.spec.derogation or ""
        d = self.derogations.get(key)
        if d is None:
            scope = self.rules.basis_scope
            return [Reason(scope.id, scope.article, f"basis {basis.id}: derogation {key!r} is not in force")]
        out: list[Reason] = []
        missing = [a for a in d.attestations if a not in basis.spec.attestations]
        if missing:
            out.append(Reason(d.id, d.article, f"basis {basis.id}: not recorded: {', '.join(missing)}"))
        if d.max_transfers is not None and used.transfers >= d.max_transfers:
            numbers = {"transfers_before": used.transfers, "max_transfers": d.max_transfers}
            out.append(Reason(d.id, d.article, f"basis {basis.id}: not repetitive; already used", numbers))
        if d.max_people is not None and people > d.max_people:
            numbers = {"people": people, "max_people": d.max_people}
            out.append(Reason(d.id, d.article, f"basis {basis.id}: {people} people is not a limited number", numbers))
        return out

    def _validity_article(self, basis: TransferBasis) -> str | None:
        if basis.validity_rule is None:
            return None
        for route in self.rules.routes:
            for v in route.validity:
                if v.id == basis.validity_rule:
                    return v.article
        return None


def _matched(rule: ClassRule, cats: set[str], tags: set[str]) -> str:
    hits = sorted(cats & {c.value for c in rule.categories}) + sorted(tags & set(rule.tags))
    return ",".join(hits)


def _routes_text(routes: Sequence[str]) -> str:
    return "no route (never leaves)" if not routes else "one of " + ", ".join(routes)


def _next(rule: ThresholdRule, at_least: int) -> int | None:
    later = [b.at_least for b in rule.bands if b.at_least > at_least]
    return min(later) if later else None


def _threshold_requirement(
    t: ThresholdRule, count: PeopleCount, at_least: int, routes: Sequence[str], next_at: int | None
) -> _Requirement:
    since = "all time" if count.window_start is None else f"since {count.window_start}"
    band = f">= {at_least:,}" if next_at is None else f"{at_least:,} to < {next_at:,}"
    text = (
        f"{count.total:,} people ({t.counter}, {since}: {count.already:,} counted + {count.request:,} in this "
        f"request) is in band {band}, which needs {_routes_text(routes).removeprefix('one of ')}"
    )
    numbers: dict[str, Any] = {
        "counter": t.counter,
        "since": None if count.window_start is None else count.window_start.isoformat(),
        "already": count.already,
        "request": count.request,
        "total": count.total,
        "band_from": at_least,
    }
    if next_at is not None:
        numbers["band_below"] = next_at
    return _Requirement(t.id, t.article, tuple(routes), text, numbers)
