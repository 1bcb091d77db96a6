"""The subject's access copy as a readable document, from the access bundle (``rights.requests.access_bundle``).

What is held about one person, region by region and by category; their consents with purpose, level and
expiry; where it is stored and for how long; the transfers abroad that carried their data — in the pack's
legal calendar as plain dates and times, never epoch milliseconds. Vehicles appear by their pseudonym only.

The copy states the checkpoint of each region the person is in, signed after the bundle's ``access_request``
event, and one ledger-derived figure per region, ``access.<region>.<index>.records``: the records that event
says the copy held, which `onshore report verify` recomputes from the event at that index. Everything else in
the copy is read from the stores at the time of writing and is descriptive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from onshore import clock
from onshore.border import dates
from onshore.errors import NotFoundError
from onshore.reports import figures as figures_mod
from onshore.reports.build import envelope, items_of, rule_of
from onshore.reports.facts import sign_checkpoints

if TYPE_CHECKING:
    from onshore.runtime import Runtime

MAX_LISTED = 500  # records listed one by one; the machine-readable bundle holds them all
Progress = Callable[[str], None]


def _when(ms: int | None, tz: ZoneInfo, *, time: bool = False) -> str | None:
    if ms is None:
        return None
    local = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M") if time else local.date().isoformat()


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)


def _held(bundle: dict[str, Any], tz: ZoneInfo) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for region, part in bundle["regions"].items():
        for row in part["records"]:
            for category in row["categories"].split(","):
                g = groups.setdefault(
                    (region, category),
                    {"region": region, "category": category, "purposes": set(), "signals": set(), "records": 0,
                     "first": row["ts_ms"], "last": row["ts_ms"]},
                )  # fmt: skip
                g["records"] += 1
                g["purposes"].add(row["purpose"])
                g["signals"].add(row["signal"])
                g["first"], g["last"] = min(g["first"], row["ts_ms"]), max(g["last"], row["ts_ms"])
    return [
        {**g, "purposes": sorted(g["purposes"]), "signals": sorted(g["signals"]),
         "first": _when(g["first"], tz), "last": _when(g["last"], tz)}
        for _, g in sorted(groups.items())
    ]  # fmt: skip


def _sections(bundle: dict[str, Any], tz: ZoneInfo, purposes: dict[str, str]) -> dict[str, Any]:
    records = [
        {"region": region, "time": _when(r["ts_ms"], tz, time=True), "signal": r["signal"], "value": _value(r["value"]),
         "categories": r["categories"].replace(",", ", "), "purpose": r["purpose"]}
        for region, part in bundle["regions"].items() for r in part["records"]
    ]  # fmt: skip
    consents = [
        {"region": region, "purpose": c["purpose"], "what_for": purposes.get(c["purpose"], ""), "level": c["level"],
         "granted": _when(c["granted_ms"], tz), "expires": _when(c["expires_ms"], tz),
         "withdrawn": _when(c["withdrawn_ms"], tz)}
        for region, part in bundle["regions"].items() for c in part["consents"]
    ]  # fmt: skip
    vehicles = [
        {"region": region, "vehicle": b["vehicle_ref"], "role": b["role"], "since": _when(b["from_ms"] or None, tz),
         "until": _when(b["until_ms"], tz)}
        for region, part in bundle["regions"].items() for b in part["bindings"]
    ]  # fmt: skip
    retention = bundle["summary"]["retention"]
    storage = [
        {**place, "rules": [f"{r['rule']} ({r['days']:g} d: {', '.join(r['categories'] + r['tags'])})"
                            for r in retention.get(place["region"], [])]}
        for place in bundle["summary"]["stored_in"]
    ]  # fmt: skip
    transfers = [
        {**t, "date": dates.local_date(dt.datetime.fromisoformat(t["at"]), str(tz)).isoformat()}
        for t in bundle["summary"]["transfers_abroad"]
    ]
    return {
        "access_held": _held(bundle, tz),
        "access_vehicles": vehicles,
        "access_records": records[:MAX_LISTED],
        "access_records_total": len(records),
        "access_consents": consents,
        "access_storage": storage,
        "access_transfers": transfers,
    }


def build_access(
    rt: Runtime, subject: str, lang: str, *, jurisdiction: str, actor_role: str, progress: Progress | None = None
) -> dict[str, Any]:
    """The access copy of ``subject`` in ``lang`` (see the module docstring); the bundle's request is a ledger
    event in each region the person is in.

    Raises:
        NotFoundError: unknown subject, or the pack asks for no access copy.
    """
    step = progress or (lambda _what: None)
    pack = rt.rulebook.for_jurisdiction(jurisdiction)
    rule = rule_of(pack, "access")
    if rule is None:  # pragma: no cover - rule_of raises for a missing report
        raise NotFoundError("no access copy in the pack")
    tz_name = pack.pack.outbound.timezone if pack.pack.outbound is not None else "UTC"
    step("access bundle")
    bundle = rt.requests.access_bundle(subject, actor_role=actor_role)
    regions = [rt.regions[name] for name in bundle["regions"]]
    checkpoints, events = sign_checkpoints(rt, regions, step)
    today = dates.local_date(clock.now(), tz_name)
    figures = figures_mod.compute(events, today.year, tz_name, today)
    keys = [f"access.{name}.{part['ledger_index']}.records" for name, part in bundle["regions"].items()]
    items = items_of(rule, figures, lang, extra={"access.records": keys})
    purposes = {p.id: p.description for p in pack.pack.purposes}
    stated = [str(f["key"]) for item in items for f in item["figures"]]
    return {
        **envelope("access", lang, today.year, jurisdiction, today, pack),
        "subject": subject,
        "title": rule.title.get(lang) or next(iter(rule.title.values())),
        "source": f"{rule.source.instrument} {rule.source.article}",
        "due": None,
        "recipient": "",
        "items": items,
        "sections": _sections(bundle, ZoneInfo(tz_name), purposes),
        "checkpoints": [c.to_dict() for c in checkpoints],
        "figures": {k: figures.get(k, 0) for k in dict.fromkeys(stated)},
        "monthly": {},
        "has_unconfirmed": rule.source.confidence.value == "U" or any(i["confidence"] == "U" for i in items),
    }
