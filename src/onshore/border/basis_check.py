"""A basis spec against the rule pack in force for its region: route, purposes, transforms, destinations, validity."""

from __future__ import annotations

import datetime as dt

from onshore.border.bases import BasisSpec
from onshore.border.conditions import check_conditions
from onshore.errors import InputError
from onshore.rules.loader import LoadedPack
from onshore.rules.outbound import OutboundRules, RouteKind, Validity


def check_spec(spec: BasisSpec, pack: LoadedPack, transform_names: frozenset[str]) -> None:
    """Check a spec against the pack in force for its region.

    Raises:
        InputError: unknown route or purpose, a route that needs no basis, a missing or unknown derogation,
            an unknown transform, or a destination that is not abroad.
    """
    outbound = outbound_rules(pack)
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


def outbound_rules(pack: LoadedPack) -> OutboundRules:
    """The pack's outbound section.

    Raises:
        InputError: the pack has none (nothing may leave).
    """
    if pack.pack.outbound is None:
        raise InputError(f"rule pack {pack.pack.pack} has no outbound section: nothing may leave")
    return pack.pack.outbound


def validity_for(pack: LoadedPack, route_id: str, approved_on: dt.date) -> Validity | None:
    """The pack's validity rule for approvals of ``route_id`` issued on ``approved_on``, if any."""
    route = outbound_rules(pack).route(route_id)
    for validity in route.validity:
        if (validity.active or validity.id in pack.enabled_overrides) and validity.issued.contains(approved_on):
            return validity
    return None
