"""What a report is built from, gathered once: each region's signed checkpoint and its event prefix, the
registers, bases, transfers, the recorded profile and the data inventory.

Every read goes through a service or storage's query functions (``storage.records.group_counts``,
``count_records`` with a ``RecordFilter``); this module writes nothing but the checkpoint it signs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from onshore.border import dates
from onshore.border.transfers import TransferFilter
from onshore.errors import NotFoundError
from onshore.ledger.answers import b64
from onshore.ledger.store import MerkleLog
from onshore.registers.profile import recorded_profile
from onshore.storage.predicates import CATEGORY_BITS, RecordFilter
from onshore.storage.records import count_records, group_counts

if TYPE_CHECKING:
    from onshore.runtime import Runtime
    from onshore.storage.region import Region

PAGE = 10_000
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Checkpoint:
    """The signed tree head a report was built from."""

    region: str
    size: int
    root: str  # base64
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "size": self.size, "root": self.root, "note": self.note}


@dataclass
class ReportFacts:
    jurisdiction: str
    year: int
    as_of: dt.date
    timezone: str
    checkpoints: list[Checkpoint]
    events: dict[str, list[dict[str, Any]]]
    profile: dict[str, Any]
    registers: dict[str, list[dict[str, Any]]]
    bases: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    inventory: list[dict[str, Any]]
    storage: list[dict[str, Any]]
    retention: list[dict[str, Any]]
    monthly: dict[str, list[int]] = field(default_factory=dict)


def read_events(region: Region, size: int) -> list[dict[str, Any]]:
    """The decoded events ``[0, size)`` of ``region``'s log, read a page at a time."""
    log = MerkleLog(region.name)
    out: list[dict[str, Any]] = []
    with region.store.read("report events") as conn:
        for start in range(0, size, PAGE):
            out += [orjson.loads(e) for e in log.entries(conn, start, min(size, start + PAGE))]
    return out


def regions_of(rt: Runtime, jurisdiction: str) -> list[Region]:
    """The regions of ``jurisdiction``.

    Raises:
        NotFoundError: none is configured.
    """
    regions = [r for r in rt.regions.values() if r.jurisdiction == jurisdiction]
    if not regions:
        raise NotFoundError(f"no region of jurisdiction {jurisdiction!r} is configured")
    return regions


def _inventory(rt: Runtime, region: Region) -> list[dict[str, Any]]:
    pack = rt.rulebook.for_jurisdiction(region.jurisdiction)
    with region.store.read("report inventory") as conn:
        groups = group_counts(conn, RecordFilter(), ("categories", "tags", "purpose"))
        people = {
            (c, p): n
            for c, p, n in group_counts(conn, RecordFilter(), ("categories", "purpose"), distinct_subjects=True)
        }
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for categories, tags, purpose, count in groups:
        cats, tag_set = set(categories.split(",")), set(tags.split(",")) if tags else set()
        rules = [
            f"{r.id} ({r.days:g} d)"
            for r in pack.pack.retention
            if (r.active or r.id in pack.enabled_overrides)
            and (cats & {c.value for c in r.categories} or tag_set & set(r.tags))
            and (not r.purposes or purpose in r.purposes)
        ]
        row = merged.setdefault(
            (categories, purpose),
            {"region": region.name, "categories": categories, "purpose": purpose, "records": 0, "retention": set()},
        )
        row["records"] += int(count)
        row["retention"].update(rules)
    out = []
    for (categories, purpose), row in sorted(merged.items()):
        row["people"] = int(people.get((categories, purpose), 0))
        row["retention"] = sorted(row["retention"]) or ["-"]
        out.append(row)
    return out


def _monthly(region: Region, year: int, tz: str) -> dict[str, list[int]]:
    """Records stored per category and month of ``year`` (by the records' own time)."""
    out: dict[str, list[int]] = {}
    bounds = [dates.start_of_day_ms(dt.date(year + m // 12, m % 12 + 1, 1), tz) for m in range(13)]
    with region.store.read("report monthly volumes") as conn:
        for category in CATEGORY_BITS:
            out[category] = [
                count_records(conn, RecordFilter(with_categories=(category,), since_ms=a, until_ms=b))
                for a, b in zip(bounds, bounds[1:], strict=False)
            ]
    return out


def sign_checkpoints(
    rt: Runtime, regions: list[Region], step: Progress
) -> tuple[list[Checkpoint], dict[str, list[dict[str, Any]]]]:
    """Sign (or reuse) each region's checkpoint and read its events before it."""
    checkpoints, events = [], {}
    for region in regions:
        step(f"checkpoint {region.name}")
        signed = rt.ledger.current_checkpoint(region.name)
        checkpoints.append(Checkpoint(region.name, signed.tree_size, b64(signed.root_hash), signed.note))
        step(f"events {region.name}")
        events[region.name] = read_events(region, signed.tree_size)
    return checkpoints, events


def gather(rt: Runtime, jurisdiction: str, year: int, as_of: dt.date, progress: Progress | None = None) -> ReportFacts:
    """Sign (or reuse) each region's checkpoint, then read everything a report of ``year`` states."""
    step = progress or (lambda _what: None)
    regions = regions_of(rt, jurisdiction)
    pack = rt.rulebook.for_jurisdiction(jurisdiction)
    tz = pack.pack.outbound.timezone if pack.pack.outbound is not None else "UTC"
    checkpoints, events = sign_checkpoints(rt, regions, step)
    step("registers")
    registers = {
        name: [e.to_dict() for r in regions for e in rt.registers.list_entries(name, region=r.name, year=year)]
        for name in ("rights_request", "incident", "complaint")
    }
    registers["provision"] = [
        e.to_dict()
        for r in regions
        for e in rt.registers.list_entries("provision", region=r.name)
        if e.body["started_on"][:4] <= str(year) and (e.body.get("ended_on") or "9999")[:4] >= str(year)
    ]
    profile = next((p for r in regions if (p := recorded_profile(r)) is not None), None)
    step("bases and transfers")
    window = TransferFilter(since=dt.date(year, 1, 1), until=dt.date(year, 12, 31), limit=1000)
    transfers = [t for r in regions for t in rt.border.list_transfers(r.name, window)]
    bases = [b.to_dict(as_of) for r in regions for b in rt.border.bases.list_bases(r.name)]
    step("inventory")
    inventory = [row for r in regions for row in _inventory(rt, r)]
    monthly: dict[str, list[int]] = {}
    for region in regions:
        for category, counts in _monthly(region, year, tz).items():
            monthly[category] = [a + b for a, b in zip(monthly.get(category, [0] * 12), counts, strict=True)]
    storage = [{"region": r.name, "jurisdiction": r.jurisdiction, "location": r.settings.location} for r in regions]
    retention = [
        {"rule": r.id, "categories": [c.value for c in r.categories], "tags": r.tags, "days": r.days,
         "source": f"{r.source.instrument} {r.source.article}", "confidence": r.source.confidence.value,
         "active": r.active or r.id in pack.enabled_overrides}
        for r in pack.pack.retention
    ]  # fmt: skip
    return ReportFacts(
        jurisdiction=jurisdiction,
        year=year,
        as_of=as_of,
        timezone=tz,
        checkpoints=checkpoints,
        events=events,
        profile=profile[1] if profile else rt.settings.processor.model_dump(mode="json"),
        registers=registers,
        bases=bases,
        transfers=transfers,
        inventory=inventory,
        storage=storage,
        retention=retention,
        monthly=monthly,
    )
