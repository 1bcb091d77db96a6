"""The record of transfer bases in their regions' stores, and their lifecycle: add, approve, revoke, list.

A route's validity comes from the pack by approval date (security assessment: 2 years for approvals issued under
the 2022 Measures, 3 years under the 2024 Provisions); a route without one takes the expiry written on the basis (a
contract's term). The re-application window opens a number of working days before expiry (60 for assessments;
weekends excluded, holidays not — see ``dates``).

Bases live in the region store of the data they cover; every change is a ``basis_change`` ledger event in
the same transaction (counts and the digest of the basis as recorded, never personal data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping

import orjson
from sqlalchemy import Connection, RowMapping, select, update

from onshore import clock
from onshore.border import dates
from onshore.border.bases import BasisSpec, TransferBasis
from onshore.border.basis_check import check_spec, outbound_rules, validity_for
from onshore.border.freetext import check_free_text
from onshore.border.tables import border_bases
from onshore.errors import ConflictError, InputError, NotFoundError, ValidationError
from onshore.model import LifecycleEvent
from onshore.rules.loader import LoadedPack, RuleBook
from onshore.storage.region import Region


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
                if outbound_rules(pack).route(basis.route).validity:
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
