"""Bearer-token authentication: every route names the roles it admits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from onshore.config import TokenSettings
from onshore.errors import AuthError, ForbiddenError
from onshore.model import Vehicle
from onshore.rights.subjects import SUBJECT_TOKEN_PREFIX, SubjectService
from onshore.vehicles import VEHICLE_TOKEN_PREFIX, VehicleRegistry
from onshore.web.limits import VehicleLimits


@dataclass(frozen=True)
class Principal:
    role: str
    name: str
    region: str | None = None
    vehicle: Vehicle | None = None
    subject_ref: str | None = None

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise ForbiddenError(f"role {self.role!r} may not do this; allowed: {', '.join(roles)}")

    def require_region(self, region: str) -> None:
        """Analysts are bound to one region; officers see all regions."""
        if self.role == "analyst" and self.region != region:
            raise ForbiddenError(f"this analyst token is bound to region {self.region!r}, not {region!r}")


class Authenticator:
    """Resolves a request's bearer token to a principal; a vehicle's request also counts against its rate limit
    (here, so that no vehicle route can forget it)."""

    def __init__(
        self,
        tokens: Iterable[TokenSettings],
        vehicles: VehicleRegistry,
        subjects: SubjectService,
        limits: VehicleLimits | None = None,
    ) -> None:
        self._api = {t.sha256: t for t in tokens}
        self._vehicles = vehicles
        self._subjects = subjects
        self._limits = limits

    def principal(self, request: Request) -> Principal:
        """The principal of ``request``'s token.

        Raises:
            AuthError (401): no, unknown or revoked token. RateLimitedError (429): a vehicle over its rate.
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        token = token.strip()
        if token.startswith(VEHICLE_TOKEN_PREFIX):
            vehicle = self._vehicles.authenticate(token)
            if self._limits is not None:
                self._limits.admit(vehicle.ref)
            return Principal(role="vehicle", name="vehicle", region=vehicle.region, vehicle=vehicle)
        if token.startswith(SUBJECT_TOKEN_PREFIX):
            subject = self._subjects.authenticate(token)
            return Principal(role="subject", name="subject", subject_ref=subject.ref)
        found = self._api.get(hashlib.sha256(token.encode()).hexdigest())
        if found is None:
            raise AuthError("unknown token")
        return Principal(role=found.role, name=found.name, region=found.region)
