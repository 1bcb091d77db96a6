"""Helpers for the border tests: plant classified records, record bases, seed the counters.

Records are planted straight into a region's ``records`` table (classified by the real rule pack) so a case
can hold thousands of people in milliseconds. Subjects are synthetic refs (``s000001``…); no personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from onshore.border.bases import parse_spec
from onshore.border.requests import ExportRequest, parse_request
from onshore.model import RecordColumns
from onshore.runtime import Runtime
from onshore.storage.records import insert_records

# inside the illustrative sensitive zone of cn-auto (Guiyang) and well outside it
ZONE_POINT = {"latitude": 26.6475, "longitude": 106.71}
PLAIN_POINT = {"latitude": 31.2304, "longitude": 121.4737}


def utc(text: str) -> dt.datetime:
    """An ISO date or date-time read as UTC (dates at noon UTC: the same date in Beijing and Brussels)."""
    if len(text) == 10:
        text += "T12:00:00"
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Plant:
    """``people`` distinct subjects, one record each of ``signal``; ``first`` offsets their refs."""

    signal: str
    people: int
    first: int = 0
    zone: bool = False
    value: Any = None


def subject(i: int) -> str:
    return f"s{i:07d}"


def plant(rt: Runtime, region: str, plants: tuple[Plant, ...] | list[Plant], ts: dt.datetime) -> int:
    """Insert classified records as the pipeline would have stored them; returns how many."""
    reg = rt.regions[region]
    pack = rt.rulebook.for_jurisdiction(reg.jurisdiction)
    zone_rule = pack.pack.zones[0] if pack.pack.zones else None
    ts_ms = int(ts.timestamp() * 1000)
    rows: list[tuple[Any, ...]] = []
    for n, p in enumerate(plants):
        rule = pack.resolve(p.signal)
        cats, tags, zone = list(rule.categories), list(rule.tags), None
        value = p.value
        if value is None:
            value = (ZONE_POINT if p.zone else PLAIN_POINT) if "location" in tags else 1.0
        if p.zone and zone_rule is not None:
            cats += [c.value for c in zone_rule.categories if c.value not in cats]
            tags += [t for t in zone_rule.tags if t not in tags]
            zone = "illustrative-zone"
        text = orjson.dumps(value).decode()
        for i in range(p.first, p.first + p.people):
            ref = subject(i)
            rows.append(
                (
                    ref,
                    f"m{n}-{i}",
                    ts_ms + i % 1000,
                    p.signal,
                    text,
                    ",".join(cats),
                    ",".join(tags),
                    rule.purposes[0],
                    rule.rule_id,
                    reg.jurisdiction,
                    zone,
                    ts_ms,
                    ref,
                )
            )
    with reg.store.transaction("plant test records") as conn:
        insert_records(conn, RecordColumns.from_rows(rows), None)
    return len(rows)


def basis(
    rt: Runtime,
    region: str,
    id: str,
    route: str,
    *,
    approved_on: str | None = "2024-04-01",
    revoke: bool = False,
    **scope_and_spec: Any,
) -> None:
    """Record (and by default approve) a basis; keyword arguments override the scope or the spec."""
    spec_keys = {"conditions", "expires_on", "derogation", "attestations", "reference", "recipient_contact"}
    spec_keys |= {"storage_abroad", "period_abroad"}
    scope: dict[str, Any] = {
        "categories": ["personal", "sensitive_personal", "important", "general"],
        "purposes": ["diagnostics"],
        "recipient": "acme-gmbh",
        "destinations": ["CN", "US", "JP"] if region == "eu" else ["DE", "US", "JP"],
    }
    spec: dict[str, Any] = {"id": id, "region": region, "route": route}
    for key, value in scope_and_spec.items():
        (spec if key in spec_keys else scope)[key] = value
    spec["scope"] = scope
    rt.border.add_basis(parse_spec(spec), actor_role="officer")
    if approved_on is not None:
        rt.border.approve_basis(id, approved_on=dt.date.fromisoformat(approved_on), actor_role="officer")
    if revoke:
        rt.border.revoke_basis(id, actor_role="officer")


def request(region: str, at: dt.datetime, **overrides: Any) -> ExportRequest:
    """A fleet-wide request for the 30 days before ``at``."""
    body: dict[str, Any] = {
        "region": region,
        "destination": "DE" if region == "cn" else "JP",
        "recipient": "acme-gmbh",
        "purpose": "diagnostics",
        "since": (at - dt.timedelta(days=30)).isoformat(),
        "until": at.isoformat(),
        "fleet": "all",
    }
    body.update(overrides)
    return parse_request(body)
