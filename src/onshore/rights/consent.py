"""Consent per subject, purpose and data category: granted with a validity, withdrawn at any time, default off.

Collection of personal data stays off until a consent exists (Provisions Art. 6(2), Art. 8). Sensitive personal
data needs a ``separate`` consent (Art. 9); an ``ordinary`` consent covers personal data only. Validities are
the pack's ``consent.durations``; consent "until withdrawn" is allowed only for the categories the pack lists in
``consent.permanent_allowed_for`` (GB/T 41871: never "permanent" for sensitive PI). Every change is a ledger
event, and the pipeline reads consents per batch, so a withdrawal stops collection with the next batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from onshore import clock
from onshore.errors import InputError, NotFoundError
from onshore.model import LifecycleEvent, Vehicle
from onshore.rights.bindings import SubjectResolver
from onshore.rules.loader import LoadedPack, RuleBook
from onshore.storage.region import Region

LEVELS = {"ordinary": ("personal",), "separate": ("personal", "sensitive_personal")}


@dataclass(frozen=True)
class ConsentChange:
    purpose: str
    level: str | None
    expires_ms: int | None
    ledger_index: int


class ConsentService:
    def __init__(self, rulebook: RuleBook, regions: dict[str, Region]) -> None:
        self.rulebook = rulebook
        self.regions = regions

    def _subject_regions(self, subject_ref: str) -> list[Region]:
        found = [r for r in self.regions.values() if r.subjects.subject(subject_ref) is not None]
        if not found:
            raise NotFoundError("no such subject")
        return found

    @staticmethod
    def _check(pack: LoadedPack, purpose: str, level: str, duration: str | None) -> float | None:
        valid = [p.id for p in pack.pack.purposes]
        if purpose not in valid:
            raise InputError(f"purpose {purpose!r} is not in rule pack {pack.pack.pack}; valid: {', '.join(valid)}")
        if level not in LEVELS:
            raise InputError(f"consent level {level!r} is invalid; valid: {', '.join(LEVELS)}")
        if level == "separate" and not next(p for p in pack.pack.purposes if p.id == purpose).sensitive_allowed:
            raise InputError(
                f"purpose {purpose!r} may not process sensitive personal data under {pack.pack.pack}; "
                "grant an ordinary consent"
            )
        policy = pack.pack.consent
        if duration is None:
            permanent_ok = {c.value for c in policy.permanent_allowed_for}
            if not set(LEVELS[level]) <= permanent_ok:
                raise InputError(
                    f"a {level} consent must have a validity under {pack.pack.pack} "
                    f"(choose one of: {', '.join(policy.durations)})"
                )
            return None
        if duration not in policy.durations:
            raise InputError(f"validity {duration!r} is not offered; valid: {', '.join(policy.durations)}")
        return policy.durations[duration]

    def grant(
        self, subject_ref: str, purpose: str, level: str, duration: str | None, *, actor_role: str
    ) -> ConsentChange:
        """Grant consent in every region that knows the subject.

        Raises:
            InputError: purpose, level or validity not allowed by the pack; NotFoundError: unknown subject.
        """
        regions = self._subject_regions(subject_ref)
        now = clock.now_ms()
        change = None
        for region in regions:
            days = self._check(self.rulebook.for_jurisdiction(region.jurisdiction), purpose, level, duration)
            expires = None if days is None else now + int(days * 86_400_000)
            event = LifecycleEvent(
                kind="consent_change",
                region=region.name,
                at_ms=now,
                actor_role=actor_role,
                purpose=purpose,
                counts={"granted": 1, level: 1},
            )
            index = region.subjects.grant_consent(subject_ref, purpose, level, now, expires, event)
            change = change or ConsentChange(purpose, level, expires, index)
        assert change is not None
        return change

    def withdraw(self, subject_ref: str, purpose: str, *, actor_role: str) -> ConsentChange:
        """Withdraw every consent for ``purpose``; collection for it stops with the next batch.

        Raises:
            NotFoundError: no consent for ``purpose`` is in force.
        """
        now = clock.now_ms()
        index = None
        for region in self._subject_regions(subject_ref):
            event = LifecycleEvent(
                kind="consent_change",
                region=region.name,
                at_ms=now,
                actor_role=actor_role,
                purpose=purpose,
                counts={"withdrawn": 1},
            )
            got = region.subjects.withdraw_consent(subject_ref, purpose, now, event)
            index = got if index is None else index
        if index is None:
            raise NotFoundError(f"no consent for purpose {purpose!r} is in force")
        return ConsentChange(purpose=purpose, level=None, expires_ms=None, ledger_index=index)

    def active(self, subject_ref: str) -> dict[str, str]:
        """purpose → level in force now."""
        now = clock.now_ms()
        merged: dict[str, str] = {}
        for region in self._subject_regions(subject_ref):
            for purpose, level in region.subjects.active_consents([subject_ref], now)[subject_ref].items():
                if merged.get(purpose) != "separate":
                    merged[purpose] = level
        return merged

    def in_force(self, subject_ref: str) -> list[dict[str, Any]]:
        """The subject's consents in force now, one per purpose (the strongest level, then the latest expiry):
        purpose, what the pack says it is for, level, granted and expires (ISO 8601 UTC; expires None: until
        withdrawn)."""
        now = clock.now_ms()
        best: dict[str, dict[str, Any]] = {}
        described: dict[str, str] = {}
        for region in self._subject_regions(subject_ref):
            pack = self.rulebook.for_jurisdiction(region.jurisdiction).pack
            described.update({p.id: p.description for p in pack.purposes})
            for row in region.subjects.consents_in_force(subject_ref, now):
                held = best.get(row["purpose"])
                rank = (list(LEVELS).index(row["level"]), row["expires_ms"] is None, row["expires_ms"] or 0)
                if held is None or rank > held["_rank"]:
                    best[row["purpose"]] = {**row, "_rank": rank}
        return [
            {
                "purpose": purpose,
                "description": described.get(purpose, ""),
                "level": row["level"],
                "granted": _iso(row["granted_ms"]),
                "expires": None if row["expires_ms"] is None else _iso(row["expires_ms"]),
            }
            for purpose, row in sorted(best.items())
        ]

    def subject_at_vehicle(self, vehicle: Vehicle, profile: str | None) -> str:
        """The subject a vehicle's screen speaks for: the driver of ``profile``, else the owner."""
        region = self.regions[vehicle.region]
        now = clock.now_ms()
        resolver = SubjectResolver(region.subjects.bindings_of_vehicle(vehicle.ref), fallback=vehicle.ref)
        subject = resolver.resolve([now], [profile])[0]
        if subject == vehicle.ref:
            raise NotFoundError("no subject is bound to this vehicle")
        return subject

    def collection(self, vehicle: Vehicle, profile: str | None = None) -> dict[str, str]:
        """What the vehicle may collect now for the subject at the wheel: purpose → level (in-vehicle principle)."""
        try:
            return self.active(self.subject_at_vehicle(vehicle, profile))
        except NotFoundError:
            return {}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
