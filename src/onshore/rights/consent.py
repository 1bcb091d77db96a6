"""Consent per vehicle subject and purpose (minimal): grant, withdraw, list; every change is logged.

Collection of personal data stays off until a consent exists (Provisions Art. 6(2), Art. 8).
Sensitive personal data needs a ``separate`` consent (Art. 9). The full consent service with
subjects and bindings replaces the vehicle-as-subject shortcut used here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from onshore.errors import InputError, NotFoundError
from onshore.model import LifecycleEvent, Vehicle
from onshore.rules.loader import RuleBook
from onshore.storage.region import Region

LEVELS = ("ordinary", "separate")
MAX_DAYS = 3660


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

    def _check_purpose(self, vehicle: Vehicle, purpose: str) -> None:
        pack = self.rulebook.for_jurisdiction(vehicle.market)
        valid = [p.id for p in pack.pack.purposes]
        if purpose not in valid:
            raise InputError(f"purpose {purpose!r} is not in rule pack {pack.pack.pack}; valid: {', '.join(valid)}")

    def grant(
        self, vehicle: Vehicle, purpose: str, level: str, days: float | None, *, actor_role: str
    ) -> ConsentChange:
        """Grant consent for ``purpose`` at ``level`` for ``days`` (None: until withdrawn)."""
        self._check_purpose(vehicle, purpose)
        if level not in LEVELS:
            raise InputError(f"consent level {level!r} is invalid; valid: {', '.join(LEVELS)}")
        if days is not None and not (0 < days <= MAX_DAYS):
            raise InputError(f"consent days must be in (0, {MAX_DAYS}]; got {days}")
        now = int(time.time() * 1000)
        expires = None if days is None else now + int(days * 86400000)
        region = self.regions[vehicle.region]
        region.store.grant_consent(vehicle.ref, purpose, level, now, expires)
        index = region.store.append_events(
            [
                LifecycleEvent(
                    kind="consent_change",
                    region=region.name,
                    at_ms=now,
                    actor_role=actor_role,
                    purpose=purpose,
                    counts={"granted": 1},
                )
            ]
        )
        return ConsentChange(purpose=purpose, level=level, expires_ms=expires, ledger_index=index)

    def withdraw(self, vehicle: Vehicle, purpose: str, *, actor_role: str) -> ConsentChange:
        """Withdraw every consent for ``purpose``; collection for it stops with the next batch."""
        self._check_purpose(vehicle, purpose)
        now = int(time.time() * 1000)
        region = self.regions[vehicle.region]
        if not region.store.withdraw_consent(vehicle.ref, purpose, now):
            raise NotFoundError(f"no consent for purpose {purpose!r} is in force")
        index = region.store.append_events(
            [
                LifecycleEvent(
                    kind="consent_change",
                    region=region.name,
                    at_ms=now,
                    actor_role=actor_role,
                    purpose=purpose,
                    counts={"withdrawn": 1},
                )
            ]
        )
        return ConsentChange(purpose=purpose, level=None, expires_ms=None, ledger_index=index)

    def active(self, vehicle: Vehicle) -> dict[str, str]:
        """purpose → level in force now: what the vehicle may collect."""
        return self.regions[vehicle.region].store.active_consents(vehicle.ref, int(time.time() * 1000))
