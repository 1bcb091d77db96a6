"""The vehicle registry: tokens bound to vehicles, stored hashed in the region of the vehicle's market.

The VIN itself is never stored: a vehicle is known by the HMAC pseudonym of its VIN under its
region's key, so ``onshore vehicle revoke VIN`` recomputes the pseudonym to find it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from onshore import clock
from onshore.deid.pseudonyms import pseudonym
from onshore.errors import AuthError, InputError, NotFoundError
from onshore.model import Vehicle
from onshore.storage.region import Region
from onshore.storage.subjects import new_subject_ref

VEHICLE_TOKEN_PREFIX = "onv_"
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_MARKET = re.compile(r"^[A-Z]{2,3}$")


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_vin(vin: str) -> str:
    """Normalise and check a VIN (ISO 3779 alphabet); the error never echoes the VIN."""
    norm = vin.strip().upper()
    if not _VIN.match(norm):
        what = f"{len(norm)} characters" if len(norm) != 17 else "a character outside that alphabet"
        raise InputError(f"VIN must be 17 characters of A-Z (no I, O, Q) and 0-9; got {what}")
    return norm


@dataclass(frozen=True)
class IssuedToken:
    token: str
    vehicle: Vehicle


class VehicleRegistry:
    """Registers vehicles, issues and revokes their tokens, authenticates them."""

    def __init__(self, regions: Mapping[str, Region]) -> None:
        self.regions = dict(regions)

    def _region_for_market(self, market: str) -> Region:
        if not _MARKET.match(market):
            raise InputError(f"market {market!r} must be a jurisdiction code such as CN or EU")
        for region in self.regions.values():
            if region.jurisdiction == market:
                return region
        raise InputError(
            f"no region of jurisdiction {market} is configured: vehicles of that market cannot be registered; "
            f"configured: {', '.join(sorted({r.jurisdiction for r in self.regions.values()}))}"
        )

    def add(self, vin: str, market: str, *, rotate: bool = False) -> IssuedToken:
        """Register ``vin`` sold into ``market``; return its new token (shown once, stored hashed)."""
        region = self._region_for_market(market.upper())
        ref = pseudonym(region.pseudonym_key(), check_vin(vin))
        token = f"{VEHICLE_TOKEN_PREFIX}{region.name}_{secrets.token_urlsafe(24)}"
        region.store.add_vehicle(ref, region.jurisdiction, token_sha256(token), _now_ms(), replace=rotate)
        if not rotate:
            # The registered owner is the subject of every datum no bound driver profile claims, including
            # data the vehicle collected before it was registered (from_ms 0).
            owner = new_subject_ref()
            region.subjects.add_subject(owner, "owner", None, _now_ms())
            region.subjects.bind(owner, ref, "owner", None, 0)
            region.subject_keys.keys_for([owner], create=True)  # made now, so ingest only reads keys
        return IssuedToken(token=token, vehicle=Vehicle(ref=ref, market=region.jurisdiction, region=region.name))

    def revoke(self, vin: str, market: str | None = None) -> Vehicle:
        """Revoke the token of ``vin``; looks in every region unless ``market`` narrows it.

        Raises:
            NotFoundError: no active vehicle with this VIN.
        """
        norm = check_vin(vin)
        candidates = [self._region_for_market(market.upper())] if market else list(self.regions.values())
        for region in candidates:
            ref = pseudonym(region.pseudonym_key(), norm)
            if region.store.revoke_vehicle(ref, _now_ms()):
                return Vehicle(ref=ref, market=region.jurisdiction, region=region.name)
        raise NotFoundError("no active vehicle with this VIN is registered")

    def owner_of(self, vin: str, market: str) -> str:
        """The subject id of the vehicle's current registered owner."""
        region, ref = self.ref_for(vin, market)
        for binding in region.subjects.bindings_of_vehicle(ref):
            if binding.role == "owner" and binding.until_ms is None:
                return binding.subject_ref
        raise NotFoundError("the vehicle has no registered owner")

    def ref_for(self, vin: str, market: str) -> tuple[Region, str]:
        """The region and pseudonym of a registered vehicle (for CLI commands taking a VIN)."""
        region = self._region_for_market(market.upper())
        ref = pseudonym(region.pseudonym_key(), check_vin(vin))
        if not region.store.vehicle_exists(ref):
            raise NotFoundError(f"no vehicle with this VIN is registered in market {market.upper()}")
        return region, ref

    def authenticate(self, token: str) -> Vehicle:
        """The vehicle holding ``token``.

        Raises:
            AuthError: unknown, malformed or revoked token.
        """
        if not token.startswith(VEHICLE_TOKEN_PREFIX):
            raise AuthError("not a vehicle token")
        region_name = token[len(VEHICLE_TOKEN_PREFIX) :].split("_", 1)[0]
        region = self.regions.get(region_name)
        if region is None:
            raise AuthError("unknown vehicle token")
        found = region.store.vehicle_by_token(token_sha256(token))
        if found is None:
            raise AuthError("unknown vehicle token")
        ref, market, revoked_ms = found
        if revoked_ms is not None:
            raise AuthError("vehicle token has been revoked")
        return Vehicle(ref=ref, market=market, region=region.name)


def _now_ms() -> int:
    return clock.now_ms()
