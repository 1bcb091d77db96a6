"""The manifest of an export bundle: its terms, the digest the ledger commits to, and the ledger's proof.

A manifest has two parts. The *terms* say what left and why: the request (vehicles as a count and digest), the
bases used, the decision per class with its reasons, the counts, the transforms, the files with their SHA-256.
They are fixed before the release is committed, and their digest (`bundles.terms_digest`: SHA-256 of the terms
as sorted-key JSON) is what each ``provide_abroad`` ledger event carries, so editing a purpose, a destination, a
basis or a class decision in ``manifest.json`` breaks the bundle's verification, not only editing a data file.
The *ledger* part, written after the commit, holds every event of the transfer with its inclusion proof against
the tree head at that size and the log's signed checkpoint of that head, which an auditor checks with the log's
public key (``onshore export verify BUNDLE --key LOG.vkey``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from onshore.border.bundles import FORMAT, b64, content_digest
from onshore.border.decisions import ExportDecision
from onshore.border.requests import ExportRequest
from onshore.ledger.merkle import leaf_hash
from onshore.ledger.store import MerkleLog
from onshore.model import LifecycleEvent
from onshore.storage.region import Region

# (region, tree size) -> (the log's origin line, the signed checkpoint note at exactly that size)
CheckpointAt = Callable[[str, int], tuple[str, str]]


def manifest_terms(
    region: Region,
    request: ExportRequest,
    decision: ExportDecision,
    transfer_id: str,
    at: dt.datetime,
    bundle: dict[str, Any],
    bases: list[dict[str, Any]],
) -> dict[str, Any]:
    """What left and why, as the manifest states it (everything but the ledger section)."""
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
        "bases": bases,
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
    }


def ledger_section(
    region: Region, logged: list[tuple[int, LifecycleEvent]], checkpoint_at: CheckpointAt | None
) -> dict[str, Any]:
    """The transfer's events with their inclusion proofs against the current tree head, and its checkpoint."""
    indexes = [i for i, _ in logged]
    log = MerkleLog(region.name)
    with region.store.read("ledger proofs") as conn:
        size = log.tree_size(conn)
        root = log.root(conn, size)
        entries = [log.entries(conn, i, i + 1)[0] for i in indexes]
        proofs = [log.inclusion_proof(conn, i, size) for i in indexes]
    section: dict[str, Any] = {
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
    }
    if checkpoint_at is not None:
        origin, note = checkpoint_at(region.name, size)
        section["checkpoint"] = {"origin": origin, "note": note}
    return section
