"""The vehicle registry: tokens bound to vehicles, stored hashed in the region of the vehicle's market, and the
gateway (if any) that speaks for each vehicle.

The VIN itself is never stored: a vehicle is known by the HMAC pseudonym of its VIN under its
region's key, so ``onshore vehicle revoke --vin VIN`` recomputes the pseudonym to find it. A gateway's record names a
VIN; `VehicleRegistry.speaking_for` finds the vehicle the same way, in every region, and admits it only when it
is registered to that gateway: the market (the origin of the data) comes from the registration, never from
the record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onshore import clock
from onshore.deid.pseudonyms import pseudonym
from onshore.errors import AuthError, InputError, NotFoundError, VehicleNotRegisteredError
from onshore.model import Vehicle
from onshore.storage.region import Region
from onshore.storage.vehicle_rows import VehicleRow

if TYPE_CHECKING:
    from onshore.auth import Principal
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


@dataclass(frozen=True)
class RegisteredVehicle:
    """A registration as ``onshore vehicle list`` shows it: no VIN, only its pseudonym."""

    region: str
    row: VehicleRow


class VehicleRegistry:
    """Registers vehicles, issues and revokes their tokens, authenticates them, and says which gateway speaks for
    which vehicle.

    Args:
        gateways: the names of the configured gateway tokens (``tokens[]`` with ``role = "gateway"``); a vehicle
            can be registered only to one of them.
    """

    def __init__(self, regions: Mapping[str, Region], gateways: Iterable[str] = ()) -> None:
        self.regions = dict(regions)
        self.gateways = frozenset(gateways)

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

    def add(self, vin: str, market: str, *, rotate: bool = False, gateway: str | None = None) -> IssuedToken:
        """Register ``vin`` sold into ``market``; return its new token (shown once, stored hashed).

        Args:
            gateway: register the vehicle to this gateway too (its records may then come from that gateway).

        Raises:
            InputError: a malformed VIN or market, no region of the market, or a gateway no token is configured for.
            ConflictError: the vehicle is registered already and ``rotate`` is false.
        """
        if gateway is not None:
            self._check_gateway(gateway)
        region = self._region_for_market(market.upper())
        ref = pseudonym(region.pseudonym_key(), check_vin(vin))
        token = f"{VEHICLE_TOKEN_PREFIX}{region.name}_{secrets.token_urlsafe(24)}"
        region.store.add_vehicle(
            ref, region.jurisdiction, token_sha256(token), _now_ms(), replace=rotate, gateway=gateway
        )
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

    def assign(self, vin: str, gateway: str | None, market: str | None = None) -> Vehicle:
        """Register an already registered vehicle to ``gateway`` (None: to no gateway any more).

        Raises:
            InputError: a malformed VIN, or a gateway no token is configured for.
            NotFoundError: no vehicle with this VIN is registered (in ``market``, when given).
        """
        if gateway is not None:
            self._check_gateway(gateway)
        norm = check_vin(vin)
        candidates = [self._region_for_market(market.upper())] if market else list(self.regions.values())
        for region in candidates:
            ref = pseudonym(region.pseudonym_key(), norm)
            if region.store.set_vehicle_gateway(ref, gateway):
                return Vehicle(ref=ref, market=region.jurisdiction, region=region.name)
        raise NotFoundError(
            "no vehicle with this VIN is registered" + (f" in market {market.upper()}" if market else "")
        )

    def registered(self, *, gateway: str | None = None, region: str | None = None) -> list[RegisteredVehicle]:
        """The registered vehicles (of ``gateway``, in ``region``, when given), region by region, by pseudonym.

        Raises:
            NotFoundError: ``region`` is not configured.
        """
        if region is not None and region not in self.regions:
            raise NotFoundError(f"region {region!r} is not configured; configured: {', '.join(self.regions)}")
        out: list[RegisteredVehicle] = []
        for name, candidate in self.regions.items():
            if region is not None and name != region:
                continue
            after = ""
            while page := candidate.store.list_vehicles(gateway=gateway, after_ref=after):
                out.extend(RegisteredVehicle(name, row) for row in page)
                after = page[-1].ref
        return out

    def speaking_for(self, principal: Principal, vins: Sequence[str], *, place: str = "message {}") -> list[Vehicle]:
        """The vehicle each of ``vins`` names, as ``principal`` may speak for it (one answer per VIN, in order).

        A gateway speaks for the vehicles registered to it (not revoked); a vehicle for itself only: a VIN it
        names must be its own, and an empty VIN means itself. The market and region come from the registration.

        Args:
            place: how errors name the place of VIN ``i`` (``place.format(i)``): a message of the body, a header.

        Raises:
            InputError (400): a malformed VIN; a gateway's message without one.
            VehicleNotRegisteredError (403): a VIN of no vehicle registered to this gateway (or, from a vehicle's
                token, another vehicle's VIN). Details give the message's index, never the VIN.
        """
        if principal.vehicle is not None:
            return [self._own(principal.vehicle, vin, place.format(index)) for index, vin in enumerate(vins)]
        if principal.role != "gateway":
            raise VehicleNotRegisteredError(f"role {principal.role!r} speaks for no vehicle")
        norms: list[str] = []
        for index, vin in enumerate(vins):
            if not vin:
                raise InputError(
                    f"{place.format(index)} names no VIN: a gateway's records must say which vehicle sent them"
                )
            try:
                norms.append(check_vin(vin))
            except InputError as exc:
                raise InputError(f"{place.format(index)}: {exc.message}") from None
        found: dict[str, Vehicle] = {}
        unique = sorted(set(norms))
        for region in self.regions.values():
            key = region.pseudonym_key()
            refs = {vin: pseudonym(key, vin) for vin in unique if vin not in found}
            rows = region.store.vehicles_by_ref(list(refs.values()))
            for vin, ref in refs.items():
                row = rows.get(ref)
                if row is not None and row.gateway == principal.name and row.revoked_ms is None:
                    found[vin] = Vehicle(ref=ref, market=row.market, region=region.name)
        for index, vin in enumerate(norms):
            if vin not in found:
                raise VehicleNotRegisteredError(
                    f"{place.format(index)}: its VIN is not registered to gateway {principal.name!r} (or the "
                    "vehicle is revoked): register it with "
                    f"`onshore vehicle assign --vin VIN --gateway {principal.name}`. "
                    "Nothing from this request was stored.",
                    details=[{"place": place.format(index), "reason": "vehicle not registered to this gateway"}],
                )
        return [found[vin] for vin in norms]

    def _own(self, vehicle: Vehicle, vin: str, where: str) -> Vehicle:
        if vin:
            region = self.regions[vehicle.region]
            try:
                ref = pseudonym(region.pseudonym_key(), check_vin(vin))
            except InputError as exc:
                raise InputError(f"{where}: {exc.message}") from None
            if ref != vehicle.ref:
                raise VehicleNotRegisteredError(
                    f"{where} names another vehicle's VIN: a vehicle token speaks for its own vehicle only. "
                    "Nothing from this request was stored.",
                    details=[{"place": where, "reason": "the VIN is not the token's vehicle"}],
                )
        return vehicle

    def _check_gateway(self, gateway: str) -> None:
        if gateway not in self.gateways:
            configured = ", ".join(sorted(self.gateways)) or "none"
            raise InputError(
                f"no gateway token named {gateway!r} is configured (configured gateways: {configured}); "
                "add one with `onshore gateway add NAME`"
            )

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
