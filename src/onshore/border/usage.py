"""How far a region has gone towards the thresholds and its bases' limits: the officer's dashboard reads this.

Per threshold rule in force on the day: the counter, its counting window, the people counted so far (opening
balances included, no request's people) and the band they fall in, with the next band's start, so the officer
sees how close the next route requirement is. Per basis: records and transfers carried, and people where it
has a people limit. The numbers come from the same counters the gate decides with (``border.counters``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from onshore import clock
from onshore.border import dates
from onshore.border.counters import BorderCounters

if TYPE_CHECKING:
    from onshore.border.service import BorderService

__all__ = ["basis_usage", "threshold_usage"]


def threshold_usage(border: BorderService, region: str, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each threshold rule in force for ``region`` on ``at`` (default now), with the people counted in its window.

    Raises:
        NotFoundError: an unknown region.
    """
    reg = border.region(region)
    gate = border.gate(reg)
    at = at or clock.now()
    day = dates.local_date(at, gate.timezone)
    counters = BorderCounters(reg.name, gate.timezone)
    out: list[dict[str, Any]] = []
    with reg.store.read("threshold usage") as conn:
        for rule in gate.thresholds:
            if not rule.effective.contains(day):
                continue
            start = dates.window_start(rule.window, day)
            people = counters.counted(conn, rule.counter, start, at)
            band = rule.band(people)
            higher = [b.at_least for b in rule.bands if b.at_least > people]
            out.append(
                {
                    "rule": rule.id,
                    "article": rule.source.article,
                    "counter": rule.counter,
                    "window": rule.window,
                    "since": None if start is None else start.isoformat(),
                    "people": people,
                    "band_from": band.at_least,
                    "routes": list(band.routes),
                    "next_band_at": higher[0] if higher else None,
                }
            )
    return out


def basis_usage(border: BorderService, region: str) -> dict[str, dict[str, int]]:
    """Per basis of ``region``: records and transfers carried, and distinct people carried (counted only for a
    basis with a people limit or a derogation, as the gate does)."""
    reg = border.region(region)
    counters = BorderCounters(reg.name, border.gate(reg).timezone)
    with reg.store.read("basis usage") as conn:
        bases = border.bases.in_region(conn, reg)
        wanted = [(b.id, b.spec.scope.max_people is not None or b.spec.derogation is not None) for b in bases]
        usage = counters.basis_usage(conn, wanted, None)
    return {k: {"people": u.people, "records": u.records, "transfers": u.transfers} for k, u in usage.items()}
