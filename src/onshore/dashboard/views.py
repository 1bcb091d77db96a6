"""The numbers each page shows, read through the runtime's services: the same the API answers."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from onshore.border import dates
from onshore.border.transfers import TransferFilter
from onshore.border.usage import basis_usage, threshold_usage
from onshore.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from onshore.web.routes import region_stats

if TYPE_CHECKING:
    from onshore.metrics import Metrics
    from onshore.runtime import Runtime

CATEGORIES = ("personal", "sensitive_personal", "important", "general")


def ingest_counts(metrics: Metrics) -> dict[str, Any]:
    """Records received and stored per region, drops per reason, refusals per status and code (this process)."""
    per_region: dict[str, dict[str, int]] = {}
    drops: dict[str, int] = {}
    refusals: dict[tuple[str, str], int] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels, value = sample.labels, int(sample.value)
            if family.name == "onshore_records_received":
                per_region.setdefault(labels["region"], {"received": 0, "stored": 0})["received"] = value
            elif family.name == "onshore_records_stored":
                per_region.setdefault(labels["region"], {"received": 0, "stored": 0})["stored"] = value
            elif family.name == "onshore_records_dropped":
                drops[labels["reason"]] = drops.get(labels["reason"], 0) + value
            elif family.name == "onshore_refusals":
                refusals[(labels["status"], labels["code"])] = value
    return {
        "regions": per_region,
        "drops": dict(sorted(drops.items())),
        "refusals": [{"status": s, "code": c, "count": n} for (s, c), n in sorted(refusals.items())],
    }


def residency(runtime: Runtime) -> list[dict[str, Any]]:
    """Stored records whose origin is not their region's jurisdiction (``onshore residency check``)."""
    return [
        {"region": name, "jurisdiction": region.jurisdiction, "origin": origin, "records": count}
        for name, region in runtime.regions.items()
        for origin, count in region.store.origins().items()
        if origin != region.jurisdiction
    ]


def checkpoints(runtime: Runtime) -> list[dict[str, Any]]:
    """Each region's signed checkpoint and whether a witness cosigned one at that size."""
    out = []
    for name in runtime.regions:
        current = runtime.ledger.current_checkpoint(name)
        witnessed = runtime.ledger.witnessed_checkpoint(name, max_size=current.tree_size)
        out.append(
            {
                **current.to_dict(),
                "witnessed_size": None if witnessed is None else witnessed.tree_size,
                "keys": [k.to_dict() for k in runtime.ledger.public_keys(name)],
            }
        )
    return out


def overview(runtime: Runtime) -> dict[str, Any]:
    return {
        "held": region_stats(runtime)["regions"],
        "categories": CATEGORIES,
        "ingest": ingest_counts(runtime.metrics),
        "findings": residency(runtime),
        "checkpoints": checkpoints(runtime),
    }


def transfers(runtime: Runtime, region: str, where: TransferFilter) -> list[dict[str, Any]]:
    """The region's transfers, newest first, each denial with its reasons."""
    return list(reversed(runtime.border.list_transfers(region, where)))


def bases(runtime: Runtime) -> dict[str, Any]:
    """Every basis with its validity on today's legal date and what it carried; thresholds per region."""
    border = runtime.border
    rows: list[dict[str, Any]] = []
    thresholds: dict[str, list[dict[str, Any]]] = {}
    for name, region in runtime.regions.items():
        pack = runtime.rulebook.for_jurisdiction(region.jurisdiction)
        if pack.pack.outbound is None:
            continue
        usage = basis_usage(border, name)
        for basis in border.bases.list_bases(name):
            row = basis.to_dict(border.today(name))
            row["usage"] = usage.get(basis.id, {"people": 0, "records": 0, "transfers": 0})
            rows.append(row)
        thresholds[name] = threshold_usage(border, name)
    return {"bases": rows, "thresholds": thresholds}


def registers(runtime: Runtime) -> dict[str, Any]:
    """Rights requests with their working-day countdown, incidents and complaints (the newest 200 of each)."""
    service = runtime.registers
    today = {name: runtime.border.today(name) for name in runtime.regions}
    rights = []
    for entry in service.list_entries("rights_request", limit=1000):
        row = entry.to_dict()
        open_ = row.get("handled_on") is None and row.get("status") not in ("handled", "refused")
        deadline = entry.deadline
        day = today.get(entry.region) or runtime.border.today()
        row["open"] = open_
        row["overdue"] = bool(open_ and deadline is not None and deadline < day)
        row["countdown"] = dates.working_days_between(day, deadline) if open_ and deadline is not None else None
        rights.append(row)
    rights.sort(key=lambda r: (not r["open"], r["deadline"] or "9999"))
    return {
        "rights": rights[:200],
        "incidents": [e.to_dict() for e in service.list_entries("incident", limit=1000)][-200:][::-1],
        "complaints": [e.to_dict() for e in service.list_entries("complaint", limit=1000)][-200:][::-1],
    }


def events(runtime: Runtime, region: str, start: int | None, kind: str | None, count: int) -> dict[str, Any]:
    """A page of the region's ledger events (the newest ``count`` by default), decoded, optionally one kind."""
    size = runtime.ledger.tree_size(region)
    if start is None:
        start = max(0, size - count)
    start = min(start, size)
    end = min(size, start + count)
    rows = []
    for event in runtime.ledger.events(region, start, end):
        decoded = event.to_dict(decode=True)
        body = decoded.get("event") or {}
        if kind and body.get("kind") != kind:
            continue
        rows.append({"index": decoded["index"], "event": body})
    return {"region": region, "start": start, "end": end, "tree_size": size, "events": rows[::-1]}


def inclusion(runtime: Runtime, region: str, index: int, size: int) -> dict[str, Any]:
    """The inclusion proof of event ``index`` in the tree of ``size``, and whether it verifies against the root
    the region's signed checkpoint at that size names.

    Raises:
        InputError: an index or size outside the log.
    """
    proof = runtime.ledger.inclusion_proof(region, index, size).to_dict()
    signed = runtime.ledger.checkpoint_at(region, size)
    entry = runtime.ledger.events(region, index, index + 1)[0].to_dict(decode=True)
    problem = None
    try:
        verify_inclusion(
            leaf_hash(base64.b64decode(entry["entry"])),
            index,
            size,
            [base64.b64decode(p) for p in proof["proof"]],
            signed.root_hash,
        )
    except ProofError as exc:
        problem = str(exc)
    return {"proof": proof, "checkpoint": signed.to_dict(), "event": entry.get("event"), "problem": problem}
