"""Consents for simulated vehicles: what the demo's and the benchmarks' owners agree to, so that their cars'
positions and cabin data are collected (without consent the pipeline drops them at the consent gate)."""

from __future__ import annotations

from typing import Any

from onshore.model import Vehicle

# The purposes a simulated owner consents to, with the level asked for where the pack lets the purpose process
# sensitive data (elsewhere an ordinary consent is enough).
COLLECTION_PURPOSES = (
    ("navigation", "separate"),
    ("infotainment", "ordinary"),
    ("vehicle_services", "ordinary"),
    ("driving_safety", "separate"),
)


def grant_collection_consents(runtime: Any, vehicle: Vehicle, validity: str = "365d") -> None:
    """Grant the owner of ``vehicle`` every purpose of `COLLECTION_PURPOSES`, as an officer would record it."""
    pack = runtime.rulebook.for_jurisdiction(vehicle.market).pack
    sensitive = {p.id for p in pack.purposes if p.sensitive_allowed}
    owner = runtime.consents.subject_at_vehicle(vehicle, None)
    for purpose, level in COLLECTION_PURPOSES:
        runtime.consents.grant(
            owner, purpose, level if purpose in sensitive else "ordinary", validity, actor_role="officer"
        )
