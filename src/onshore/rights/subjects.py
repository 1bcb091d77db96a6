"""Subjects: people bound to vehicles (owner, driver profile, passenger), and their tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from onshore import clock
from onshore.errors import AuthError, InputError, NotFoundError
from onshore.model import LifecycleEvent
from onshore.storage.region import Region
from onshore.storage.subjects import new_subject_ref
from onshore.vehicles import VehicleRegistry

SUBJECT_TOKEN_PREFIX = "ons_sub_"
ROLES = ("owner", "driver", "passenger")


@dataclass(frozen=True)
class SubjectPrincipal:
    ref: str
    regions: tuple[str, ...]


class SubjectService:
    def __init__(self, regions: dict[str, Region], vehicles: VehicleRegistry) -> None:
        self.regions = regions
        self.vehicles = vehicles

    def bind(
        self,
        vin: str,
        market: str,
        role: str,
        *,
        subject_ref: str | None = None,
        profile: str | None = None,
        issue_token: bool = True,
    ) -> tuple[str, str | None]:
        """Bind a (new or existing) subject to a vehicle from now on; returns (subject_ref, token or None).

        The same subject id is used in every region they have data in; the token works in all of them.
        """
        if role not in ROLES:
            raise InputError(f"role {role!r} is invalid; valid: {', '.join(ROLES)}")
        if profile is not None and (not profile or len(profile) > 64):
            raise InputError("profile must be 1-64 characters (the vehicle's own driver-profile id)")
        region, vehicle_ref = self.vehicles.ref_for(vin, market)
        ref = subject_ref or new_subject_ref()
        if subject_ref is not None and not any(r.subjects.subject(subject_ref) for r in self.regions.values()):
            raise NotFoundError("no such subject")
        token = SUBJECT_TOKEN_PREFIX + secrets.token_urlsafe(24) if issue_token else None
        digest = hashlib.sha256(token.encode()).hexdigest() if token else None
        now = clock.now_ms()
        if digest:  # the token must open the subject in every region that knows them
            for other in self.regions.values():
                if other is not region and other.subjects.subject(ref):
                    other.subjects.add_subject(ref, role, digest, now)
        region.subjects.add_subject(ref, role, digest, now)
        region.subjects.bind(ref, vehicle_ref, role, profile, now)
        region.subject_keys.keys_for([ref], create=True)
        region.store.append_events(
            [
                LifecycleEvent(
                    kind="subject_binding", region=region.name, at_ms=now, actor_role="officer", counts={role: 1}
                )
            ]
        )
        return ref, token

    def authenticate(self, token: str) -> SubjectPrincipal:
        """Raises AuthError for a forged, unknown or erased subject's token."""
        if not token.startswith(SUBJECT_TOKEN_PREFIX):
            raise AuthError("not a subject token")
        digest = hashlib.sha256(token.encode()).hexdigest()
        found: str | None = None
        regions: list[str] = []
        for name, region in self.regions.items():
            row = region.subjects.subject_by_token(digest)
            if row is not None and row["erased_ms"] is None:
                found = row["ref"]
                regions.append(name)
        if found is None:
            raise AuthError("unknown subject token")
        return SubjectPrincipal(ref=found, regions=tuple(regions))

    def regions_of(self, subject_ref: str) -> list[Region]:
        """Regions that know the subject.

        Raises:
            NotFoundError: no region knows them.
        """
        found = [r for r in self.regions.values() if r.subjects.subject(subject_ref) is not None]
        if not found:
            raise NotFoundError("no such subject")
        return found
