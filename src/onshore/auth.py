"""Principals and roles: who a token speaks for, and what that role may do. Used by every adapter.

The core knows no transport: the HTTP binding (``onshore.web.auth``) is a thin FastAPI dependency over it, and
the message adapters (MQTT, NATS) call :meth:`Authenticator.authenticate` and :meth:`Principal.require` the same
way. Tokens are kept only as SHA-256 hashes; a secret compared in memory is compared in constant time.

Roles:
    ``vehicle``: one registered vehicle (its own consents and uploads).
    ``gateway``: a fleet back-end speaking for the vehicles registered to it (``VehicleRegistry.speaking_for``).
    ``analyst``: reads one region's data (bound to that region).
    ``officer``: the data security officer (every region; bases, raw frames, subject requests).
    ``auditor``: reads the ledger and the bases.
    ``subject``: a driver or owner (their own consents and requests).
    ``monitor``: a metrics scraper (Prometheus): ``GET /metrics`` only, which holds no personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from onshore import clock
from onshore.errors import AuthError, ForbiddenError, NotFoundError
from onshore.rights.subjects import SUBJECT_TOKEN_PREFIX
from onshore.vehicles import VEHICLE_TOKEN_PREFIX

if TYPE_CHECKING:
    from onshore.config import TokenSettings
    from onshore.model import Vehicle
    from onshore.rights.subjects import SubjectPrincipal


class Role(StrEnum):
    """The roles a token can be bound to (``config.TokenSettings.role`` names a subset of them)."""

    VEHICLE = "vehicle"
    GATEWAY = "gateway"
    ANALYST = "analyst"
    OFFICER = "officer"
    AUDITOR = "auditor"
    SUBJECT = "subject"
    MONITOR = "monitor"


# Roles bound to one region: their tokens name it, and they reach no other region's data.
REGION_BOUND_ROLES = frozenset({Role.ANALYST})


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who made a request: a role, a name that is no personal data, and what the role is bound to."""

    role: Role
    name: str
    region: str | None = None
    vehicle: Vehicle | None = None
    subject_ref: str | None = None

    @property
    def region_bound(self) -> bool:
        """True when this principal may reach only ``region``'s data."""
        return self.role in REGION_BOUND_ROLES

    def require(self, *roles: Role) -> None:
        """Raises ForbiddenError (403) unless this principal's role is one of ``roles``."""
        if self.role not in roles:
            raise ForbiddenError(f"role {self.role.value!r} may not do this; allowed: {', '.join(roles)}")

    def may_reach(self, region: str) -> bool:
        """Whether this principal may reach ``region``'s data (analysts their own; others every region)."""
        return not self.region_bound or self.region == region

    def require_region(self, region: str) -> None:
        """Analysts are bound to one region; officers see all regions.

        Raises:
            ForbiddenError (403): a region-bound principal asked for another region.
        """
        if not self.may_reach(region):
            raise ForbiddenError(f"this {self.role.value} token is bound to region {self.region!r}, not {region!r}")

    def require_subject(self, subject_ref: str) -> None:
        """A subject acts on themselves only; staff roles allowed by the route act on anyone.

        Raises:
            ForbiddenError (403): a subject named someone else.
        """
        if self.role is Role.SUBJECT and self.subject_ref != subject_ref:
            raise ForbiddenError("a subject may make requests about themselves only")


@dataclass(frozen=True, kw_only=True)
class VehiclePrincipal(Principal):
    """A vehicle's principal: the vehicle is always known."""

    vehicle: Vehicle


class VehicleTokens(Protocol):
    def authenticate(self, token: str) -> Vehicle: ...


class SubjectTokens(Protocol):
    def authenticate(self, token: str) -> SubjectPrincipal: ...


class RateLimit(Protocol):
    def admit(self, key: str) -> None: ...
    def admit_gateway(self, name: str) -> None: ...


def _basic_password(credentials: str) -> str:
    """The password of HTTP Basic ``credentials`` (base64 of ``name:password``).

    Raises:
        AuthError (401): not base64 of a ``name:password`` pair.
    """
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed basic credentials: send base64 of 'name:token'") from None
    _name, colon, password = decoded.partition(":")
    if not colon or not password:
        raise AuthError("malformed basic credentials: send base64 of 'name:token', the token as the password")
    return password


def token_sha256(token: str) -> str:
    """The hex SHA-256 under which a token is stored (the token itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _ApiToken:
    digest: bytes
    settings: TokenSettings


class Authenticator:
    """Resolves a bearer token to a principal, whatever the transport.

    A vehicle's token also counts against its rate limit here, so that no adapter or route can forget it.
    Vehicle and subject tokens are found by the index on their hash (the hash, not the secret, is what a
    lookup's timing could reveal); API tokens from the config are compared with every configured hash in
    constant time.
    """

    def __init__(
        self,
        tokens: Iterable[TokenSettings],
        vehicles: VehicleTokens,
        subjects: SubjectTokens,
        limits: RateLimit | None = None,
        regions: Iterable[str] = (),
    ) -> None:
        self._api = [_ApiToken(bytes.fromhex(t.sha256), t) for t in tokens]
        self._vehicles = vehicles
        self._subjects = subjects
        self._limits = limits
        self._regions = tuple(regions)

    def authenticate(self, token: str) -> Principal:
        """The principal holding ``token``.

        Raises:
            AuthError (401): an empty, unknown or revoked token. RateLimitedError (429): a vehicle or a gateway
                over its rate.
        """
        token = token.strip()
        if not token:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        if token.startswith(VEHICLE_TOKEN_PREFIX):
            vehicle = self._vehicles.authenticate(token)
            if self._limits is not None:
                self._limits.admit(vehicle.ref)
            return VehiclePrincipal(role=Role.VEHICLE, name="vehicle", region=vehicle.region, vehicle=vehicle)
        if token.startswith(SUBJECT_TOKEN_PREFIX):
            subject = self._subjects.authenticate(token)
            return Principal(role=Role.SUBJECT, name="subject", subject_ref=subject.ref)
        found = self._api_token(token)
        if found is None:
            raise AuthError("unknown token")
        if found.expires is not None and clock.now().date() > found.expires:
            raise AuthError(f"token {found.name!r} expired on {found.expires.isoformat()}; ask for a new one")
        if found.role == Role.GATEWAY and self._limits is not None:
            self._limits.admit_gateway(found.name)  # a gateway's own share, beside each vehicle's
        return Principal(role=Role(found.role), name=found.name, region=found.region)

    def authenticate_bearer(self, authorization: str | None, *, basic: bool = False) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header value (HTTP, MQTT v5 auth data).

        Args:
            basic: also take ``Authorization: Basic base64(name:token)``, the token as the password: what a client
                that can only put credentials in its target URL sends (fleet-telemetry's HTTP dispatcher, whose
                ``address`` may be ``https://gateway-name:TOKEN@onshore.example/...``). The name is not checked.

        Raises:
            AuthError (401): no header, another scheme, or what :meth:`authenticate` refuses.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if basic and scheme.lower() == "basic":
            return self.authenticate(_basic_password(token))
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        return self.authenticate(token)

    def require_region(self, principal: Principal, region: str) -> None:
        """Check that ``principal`` may reach the data of ``region``, named by a request.

        Raises:
            NotFoundError (404): a region-bound principal named a region that is not configured (as a route
                answers anyone naming it). ForbiddenError (403): another region than the principal's.
        """
        if principal.region_bound and region not in self._regions:
            raise NotFoundError(f"region {region!r} is not configured; configured: {', '.join(self._regions)}")
        principal.require_region(region)

    def _api_token(self, token: str) -> TokenSettings | None:
        digest = hashlib.sha256(token.encode()).digest()
        found: TokenSettings | None = None
        for candidate in self._api:  # every hash is compared: the time taken says nothing about which matched
            if hmac.compare_digest(candidate.digest, digest):
                found = candidate.settings
        return found
