"""The manifest of a released bundle: what left, under which bases and transforms, and its ledger proofs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from onshore.border.bases import BasisRegistry
from onshore.border.bundles import FORMAT, b64, content_digest
from onshore.border.decisions import ExportDecision
from onshore.border.requests import ExportRequest
from onshore.ledger.merkle import leaf_hash
from onshore.ledger.store import MerkleLog
from onshore.model import LifecycleEvent
from onshore.storage.region import Region


def build_manifest(
    region: Region,
    request: ExportRequest,
    decision: ExportDecision,
    transfer_id: str,
    at: dt.datetime,
    bundle: dict[str, Any],
    logged: list[tuple[int, LifecycleEvent]],
    bases: BasisRegistry,
) -> dict[str, Any]:
    """The manifest of a release: request, bases, decision, counts, transforms, files, and the inclusion proof of
    every ledger event of the release in the tree as it stands now."""
    indexes = [i for i, _ in logged]
    log = MerkleLog(region.name)
    with region.store.read("ledger proofs") as conn:
        size = log.tree_size(conn)
        root = log.root(conn, size)
        entries = [log.entries(conn, i, i + 1)[0] for i in indexes]
        proofs = [log.inclusion_proof(conn, i, size) for i in indexes]
    used = sorted({c.basis_id for c in decision.classes if c.basis_id and c.decision != "deny"})
    files = bundle["files"]
    by_class = {
        c.data_class.key: {
            "decision": c.decision,
            "records_selected": c.data_class.records,
            "people": c.data_class.people,
            **bundle["stats"].get(c.data_class.key, {"records_released": 0}),
        }
        for c in decision.classes
    }
    return {
        "format": FORMAT,
        "transfer_id": transfer_id,
        "created_at": at.isoformat(),
        "region": region.name,
        "origin_jurisdiction": region.jurisdiction,
        "request": request.public_dict(),
        "bases": [bases.get(b).to_dict(decision.day) for b in used],
        "decision": decision.to_dict(),
        "counts": {
            "records": sum(v["records_released"] for v in by_class.values()),
            "flow_rows": bundle["flows"],
            "by_class": by_class,
        },
        "transforms": {
            c.data_class.key: [t.model_dump() for t in c.transforms] for c in decision.classes if c.decision != "deny"
        },
        "pseudonyms": "vehicle and subject are HMAC-SHA-256 pseudonyms under a key for this recipient only",
        "files": [f.to_dict() for f in files],
        "content_sha256": content_digest(files),
        "ledger": {
            "region": region.name,
            "tree_size": size,
            "root": b64(root),
            "events": [
                {
                    "index": i,
                    "kind": ev.kind,
                    "basis_id": ev.basis_id,
                    "entry": b64(entry),
                    "leaf_hash": b64(leaf_hash(entry)),
                    "proof": [b64(p) for p in proof],
                }
                for (i, ev), entry, proof in zip(logged, entries, proofs, strict=True)
            ],
        },
    }
