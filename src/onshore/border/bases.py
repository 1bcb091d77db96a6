"""Transfer bases: the approvals, filings and safeguards under which data may leave, and their lifecycle.

A basis (security assessment approval, standard contract filing, certification, recorded exemption; in the
EU SCCs, BCRs, a derogation…) has an id, a route of the rule pack, a scope (categories, tags, signals,
purposes, recipient, destinations, maximum people and records), conditions (the de-identification the
recipient agreed to), a status and a validity. Status moves ``draft → approved → revoked``; ``expired`` is
computed from the expiry date. A route's validity comes from the pack by approval date (security
assessment: 2 years for approvals issued under the 2022 Measures, 3 years under the 2024 Provisions); a route
without one takes the expiry written on the basis (a contract's term). The re-application window opens a
number of working days before expiry (60 for assessments; weekends excluded, holidays not — see ``dates``).

Bases live in the region store of the data they cover; every change is a ``basis_change`` ledger event in
the same transaction (counts and the digest of the basis as recorded, never personal data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, RowMapping, select, update

from onshore import clock
from onshore.border import dates
from onshore.border.conditions import check_conditions
from onshore.border.dates import LegalDate
from onshore.border.freetext import check_free_text
from onshore.border.tables import border_bases
from onshore.errors import ConflictError, InputError, NotFoundError, ValidationError
from onshore.model import LifecycleEvent
from onshore.rules.loader import LoadedPack, RuleBook
from onshore.rules.outbound import OutboundRules, RouteKind, TransformSpec, Validity
from onshore.rules.schema import Category
from onshore.storage.region import Region

# Lower-case only, so an id can never look like a VIN in a ledger event.
ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{1,63}$"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasisScope(_Strict):
    """What a basis covers. A transfer outside any part of it is denied (Provisions Art. 12; GDPR Art. 46)."""

    categories: list[Category] = Field(min_length=1, description="data categories covered")
    tags: list[str] = Field(default_factory=list, description="data types covered; empty: any")
    signals: list[str] = Field(default_factory=list, description="signals covered; empty: any")
    purposes: list[str] = Field(min_length=1, description="purposes of the recipient's use")
    recipient: str = Field(pattern=ID_PATTERN, description="id of the receiving organisation")
    destinations: list[str] = Field(min_length=1, description="jurisdictions the data may go to")
    max_people: int | None = Field(default=None, ge=1, description="most distinct people over the basis's life")
    max_records: int | None = Field(default=None, ge=1, description="most records over the basis's life")

    @field_validator("destinations")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not re.fullmatch(r"[A-Z]{2,3}", code):
                raise ValueError(f"destination {code!r} must be 2-3 upper-case letters (ISO 3166 or EU)")
        return v

    @field_validator("tags", "purposes")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} must be lower_snake_case")
        return v


class BasisSpec(_Strict):
    """A basis as the officer writes it (YAML or JSON)."""

    id: str = Field(pattern=ID_PATTERN, description="lower-case id, e.g. cn-sa-2024-001")
    region: str = Field(description="the region whose data the basis covers")
    route: str = Field(description="route id of the region's rule pack (security_assessment, scc…)")
    reference: str | None = Field(default=None, max_length=120, description="approval or filing number")
    scope: BasisScope
    conditions: list[TransformSpec] = Field(default_factory=list, description="required de-identification")
    expires_on: LegalDate | None = Field(default=None, description="term of a contract or certificate")
    derogation: str | None = Field(default=None, description="for route derogation: the Art. 49 derogation key")
    attestations: list[str] = Field(default_factory=list, description="facts recorded (e.g. subjects_informed)")
    note: str | None = Field(default=None, max_length=2000)
    # what the outbound supplement states (Provisions Art. 15): the recipient's contact, where and how long abroad
    recipient_contact: str | None = Field(default=None, max_length=200, description="the recipient's contact")
    storage_abroad: str | None = Field(default=None, max_length=200, description="storage place abroad")
    period_abroad: str | None = Field(default=None, max_length=100, description="storage period abroad")


@dataclass(frozen=True)
class TransferBasis:
    """A recorded basis with its status and validity."""

    spec: BasisSpec
    status: str  # draft | approved | revoked
    approved_on: dt.date | None
    expires_on: dt.date | None
    reapply_from: dt.date | None
    validity_rule: str | None
    version: int
    created_ms: int
    updated_ms: int
    revoked_ms: int | None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def route(self) -> str:
        return self.spec.route

    def status_on(self, day: dt.date) -> str:
        """``draft``, ``approved``, ``expired``, ``revoked`` or ``pending`` (approved with a later date)."""
        if self.status != "approved":
            return self.status
        if self.approved_on is not None and day < self.approved_on:
            return "pending"
        if self.expires_on is not None and day >= self.expires_on:
            return "expired"
        return "approved"

    def to_dict(self, day: dt.date | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.spec.model_dump(mode="json"),
            "status": self.status,
            "approved_on": _iso(self.approved_on),
            "expires_on": _iso(self.expires_on),
            "reapply_from": _iso(self.reapply_from),
            "validity_rule": self.validity_rule,
            "version": self.version,
        }
        if day is not None:
            out["status_on_date"] = self.status_on(day)
            out["as_of"] = day.isoformat()
            if self.expires_on is not None:
                out["working_days_to_expiry"] = dates.working_days_between(day, self.expires_on)
                out["in_reapply_window"] = bool(
                    self.reapply_from is not None and self.reapply_from <= day < self.expires_on
                )
        return out


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def parse_spec(data: Any) -> BasisSpec:
    """Validate a basis spec.

    Raises:
        ValidationError: the spec does not match the format; the message names the field.
    """
    try:
        return BasisSpec.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ValidationError(f"basis {where}: {err['msg']}") from exc


def check_spec(spec: BasisSpec, pack: LoadedPack, transform_names: frozenset[str]) -> None:
    """Check a spec against the pack in force for its region.

    Raises:
        InputError: unknown route or purpose, a route that needs no basis, a missing or unknown derogation,
            an unknown transform, or a destination that is not abroad.
    """
    outbound = _outbound(pack)
    try:
        route = outbound.route(spec.route)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    if route.kind is RouteKind.AUTOMATIC:
        raise InputError(f"route {spec.route!r} needs no basis: the rule naming it grants it")
    purposes = {p.id for p in pack.pack.purposes}
    for purpose in spec.scope.purposes:
        if purpose not in purposes:
            raise InputError(f"purpose {purpose!r} is not in rule pack {pack.pack.pack}; valid: {', '.join(purposes)}")
    for condition in spec.conditions:
        if condition.name not in transform_names:
            raise InputError(f"transform {condition.name!r} is unknown; valid: {', '.join(sorted(transform_names))}")
    check_conditions(spec.conditions)
    domestic = set(outbound.domestic.jurisdictions)
    for code in spec.scope.destinations:
        if code in domestic:
            raise InputError(f"destination {code} is not abroad for {pack.jurisdiction}: no basis is needed")
    keys = {d.key for d in outbound.derogations}
    if route.derogations and spec.derogation not in keys:
        raise InputError(f"derogation {spec.derogation!r} is unknown; valid: {', '.join(sorted(keys)) or 'none'}")
    if spec.derogation is not None and not route.derogations:
        raise InputError(f"route {spec.route!r} takes no derogation; remove `derogation`")


def _outbound(pack: LoadedPack) -> OutboundRules:
    if pack.pack.outbound is None:
        raise InputError(f"rule pack {pack.pack.pack} has no outbound section: nothing may leave")
    return pack.pack.outbound


def validity_for(pack: LoadedPack, route_id: str, approved_on: dt.date) -> Validity | None:
    """The pack's validity rule for approvals of ``route_id`` issued on ``approved_on``, if any."""
    route = _outbound(pack).route(route_id)
    for validity in route.validity:
        if (validity.active or validity.id in pack.enabled_overrides) and validity.issued.contains(approved_on):
            return validity
    return None


def _row_to_basis(row: RowMapping) -> TransferBasis:
    spec = BasisSpec.model_validate(orjson.loads(row["spec"]))
    approved = dt.date.fromisoformat(row["approved_on"]) if row["approved_on"] else None
    expires = dt.date.fromisoformat(row["expires_on"]) if row["expires_on"] else None
    return TransferBasis(
        spec=spec,
        status=row["status"],
        approved_on=approved,
        expires_on=expires,
        reapply_from=None,
        validity_rule=row["validity_rule"],
        version=row["version"],
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
        revoked_ms=row["revoked_ms"],
    )


class BasisRegistry:
    """Records, approves, revokes and lists transfer bases in their regions' stores."""

    def __init__(self, rulebook: RuleBook, regions: Mapping[str, Region], transform_names: frozenset[str]) -> None:
        self.rulebook = rulebook
        self.regions = regions
        self.transform_names = transform_names

    def _region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise NotFoundError(f"region {name!r} is not configured; configured: {', '.join(self.regions)}") from None

    def _pack(self, region: Region) -> LoadedPack:
        return self.rulebook.for_jurisdiction(region.jurisdiction)

    def _with_reapply(self, basis: TransferBasis, pack: LoadedPack) -> TransferBasis:
        if basis.expires_on is None or basis.approved_on is None:
            return basis
        validity = validity_for(pack, basis.route, basis.approved_on)
        if validity is None or validity.reapply_working_days is None:
            return basis
        reapply = dates.working_days_before(basis.expires_on, validity.reapply_working_days)
        return dataclasses.replace(basis, reapply_from=reapply)

    def add(self, spec: BasisSpec, *, actor_role: str) -> TransferBasis:
        """Record a new basis as a draft.

        Raises:
            NotFoundError: unknown region; InputError: the spec does not fit the pack (see ``check_spec``);
            ConflictError: a basis with this id exists.
        """
        region = self._region(spec.region)
        check_spec(spec, self._pack(region), self.transform_names)
        check_free_text(spec.model_dump(mode="json"), self.regions)
        now = clock.now_ms()
        with region.store.transaction("add transfer basis") as conn:
            if self._find(conn, spec.id) is not None:
                raise ConflictError(f"basis {spec.id!r} exists; choose another id")
            conn.execute(
                border_bases.insert().values(
                    id=spec.id,
                    region=region.name,
                    route=spec.route,
                    status="draft",
                    spec=orjson.dumps(spec.model_dump(mode="json")).decode(),
                    version=1,
                    created_ms=now,
                    updated_ms=now,
                )
            )
            basis = self._load(conn, spec.id)
            self._event(conn, region, basis, "added", actor_role, now)
        return basis

    def approve(
        self, basis_id: str, *, approved_on: dt.date, actor_role: str, reference: str | None = None
    ) -> TransferBasis:
        """Mark a draft approved on ``approved_on`` (the date on the approval), fixing its expiry.

        The expiry is ``approved_on`` plus the pack's validity for the route on that date; a route without
        one needs ``expires_on`` on the spec (a contract's or certificate's term).

        Raises:
            NotFoundError: no such basis; ConflictError: not a draft; InputError: no validity can be found.
        """
        if not dates.EARLIEST <= approved_on <= dates.LATEST:
            raise ValidationError(
                f"approved_on {approved_on} is outside the accepted range {dates.EARLIEST} .. {dates.LATEST}",
                details=[{"field": "approved_on", "reason": "outside the accepted range"}],
            )
        region, basis = self._locate(basis_id)
        if reference is not None:
            check_free_text({"reference": reference}, self.regions)
        pack = self._pack(region)
        now = clock.now_ms()
        with region.store.transaction("approve transfer basis") as conn:
            basis = self._load(conn, basis_id)
            if basis.status != "draft":
                raise ConflictError(f"basis {basis_id!r} is {basis.status}; only a draft can be approved")
            validity = validity_for(pack, basis.route, approved_on)
            if validity is not None:
                expires = dates.add_years(approved_on, validity.years)
            elif basis.spec.expires_on is not None:
                expires = basis.spec.expires_on
            else:
                expires = None
                if _outbound(pack).route(basis.route).validity:
                    raise InputError(
                        f"no validity of route {basis.route!r} covers approvals issued on {approved_on}; "
                        "write expires_on on the basis"
                    )
            if expires is not None and expires <= approved_on:
                raise InputError(f"basis {basis_id!r} would expire ({expires}) before it is approved ({approved_on})")
            spec = basis.spec
            if reference is not None:
                spec = spec.model_copy(update={"reference": reference})
            conn.execute(
                update(border_bases)
                .where(border_bases.c.id == basis_id)
                .values(
                    status="approved",
                    approved_on=approved_on.isoformat(),
                    expires_on=None if expires is None else expires.isoformat(),
                    validity_rule=None if validity is None else validity.id,
                    spec=orjson.dumps(spec.model_dump(mode="json")).decode(),
                    version=basis.version + 1,
                    updated_ms=now,
                )
            )
            approved = self._load(conn, basis_id)
            self._event(conn, region, approved, "approved", actor_role, now)
        return self._with_reapply(approved, pack)

    def revoke(self, basis_id: str, *, actor_role: str) -> TransferBasis:
        """Revoke a basis; nothing more leaves under it.

        Raises:
            NotFoundError: no such basis; ConflictError: already revoked.
        """
        region, _ = self._locate(basis_id)
        now = clock.now_ms()
        with region.store.transaction("revoke transfer basis") as conn:
            basis = self._load(conn, basis_id)
            if basis.status == "revoked":
                raise ConflictError(f"basis {basis_id!r} is already revoked")
            conn.execute(
                update(border_bases)
                .where(border_bases.c.id == basis_id)
                .values(status="revoked", revoked_ms=now, updated_ms=now, version=basis.version + 1)
            )
            revoked = self._load(conn, basis_id)
            self._event(conn, region, revoked, "revoked", actor_role, now)
        return self._with_reapply(revoked, self._pack(region))

    def get(self, basis_id: str) -> TransferBasis:
        """Raises NotFoundError when no region holds ``basis_id``."""
        region, basis = self._locate(basis_id)
        return self._with_reapply(basis, self._pack(region))

    def list_bases(self, region: str | None = None) -> list[TransferBasis]:
        """Every basis of one region, or of all regions, ordered by id."""
        names = [region] if region is not None else list(self.regions)
        out: list[TransferBasis] = []
        for name in names:
            reg = self._region(name)
            pack = self._pack(reg)
            with reg.store.read("list transfer bases") as conn:
                found = self.in_region(conn, reg)
            out.extend(self._with_reapply(basis, pack) for basis in found)
        return out

    def in_region(self, conn: Connection, region: Region) -> list[TransferBasis]:
        """The bases of ``region``, read on the caller's connection (the gate's input)."""
        stmt = select(border_bases).where(border_bases.c.region == region.name).order_by(border_bases.c.id)
        return [_row_to_basis(row) for row in conn.execute(stmt).mappings().all()]

    def _locate(self, basis_id: str) -> tuple[Region, TransferBasis]:
        for region in self.regions.values():
            with region.store.read("find transfer basis") as conn:
                found = self._find(conn, basis_id)
            if found is not None:
                return region, found
        raise NotFoundError(f"no transfer basis {basis_id!r}; `onshore bases list` shows them")

    @staticmethod
    def _find(conn: Connection, basis_id: str) -> TransferBasis | None:
        row = conn.execute(select(border_bases).where(border_bases.c.id == basis_id)).mappings().first()
        return None if row is None else _row_to_basis(row)

    def _load(self, conn: Connection, basis_id: str) -> TransferBasis:
        found = self._find(conn, basis_id)
        if found is None:
            raise NotFoundError(f"no transfer basis {basis_id!r}")
        return found

    @staticmethod
    def _event(conn: Connection, region: Region, basis: TransferBasis, change: str, actor_role: str, now: int) -> None:
        recorded = orjson.dumps(basis.to_dict(), option=orjson.OPT_SORT_KEYS)
        event = LifecycleEvent(
            kind="basis_change",
            region=region.name,
            at_ms=now,
            actor_role=actor_role,
            counts={change: 1, "version": basis.version},
            digest=hashlib.sha256(recorded).hexdigest(),
            basis_id=basis.id,
        )
        region.store.journal.append(conn, [event.to_bytes()])
