"""The operator's check that the region's stores still hold what the ledger says was stored.

An auditor verifies the log from outside (``ledger.verify``: signed checkpoints, proofs, the events); this check
runs inside the region with its stores and covers what the events commit to.

``onshore ledger verify -c CONFIG`` runs it beside the log check: for every ``store`` event that commits to
content (event format 2) it re-derives the digest from the batch's live rows plus the tombstones its rows left
when a ``delete`` event removed them; for every such ``delete`` event it re-derives the digest from its
tombstones. A changed value, time, category or origin, a row removed without a delete event, or a forged
tombstone makes the batch (named by its ledger index) fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from onshore.errors import LedgerIntegrityError
from onshore.ledger.store import MerkleLog
from onshore.storage.content import CONTENT_EVENT_VERSION, live_row_digests, set_digest, tombstones

_PAGE = 10_000
MAX_LISTED = 50


@dataclass
class ContentVerdict:
    """What the content check found; ``ok`` only when no batch failed."""

    region: str
    batches_checked: int = 0
    rows_checked: int = 0
    tombstones_checked: int = 0
    rows_not_covered: int = 0  # stored before content commitments existed
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0

    @property
    def ok(self) -> bool:
        return self.failure_count == 0

    def fail(self, message: str) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append(message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "ok": self.ok,
            "batches_checked": self.batches_checked,
            "rows_checked": self.rows_checked,
            "tombstones_checked": self.tombstones_checked,
            "rows_not_covered": self.rows_not_covered,
            "failure_count": self.failure_count,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class _Commitment:
    kind: str
    digest: str | None
    rows: int


def _commitments(log: MerkleLog, conn: Connection) -> dict[int, _Commitment]:
    """Ledger index → what each content-committing store or delete event commits to."""
    size = log.tree_size(conn)
    found: dict[int, _Commitment] = {}
    for start in range(0, size, _PAGE):
        for offset, entry in enumerate(log.entries(conn, start, min(size, start + _PAGE))):
            try:
                event = orjson.loads(entry)
            except orjson.JSONDecodeError:
                continue  # the log check reports malformed entries
            if not isinstance(event, dict) or event.get("v") != CONTENT_EVENT_VERSION:
                continue
            kind = event.get("kind")
            if kind not in ("store", "delete"):
                continue
            counts = event.get("counts") or {}
            rows = counts.get("stored", 0) if kind == "store" else counts.get("records", 0)
            found[start + offset] = _Commitment(str(kind), event.get("digest"), int(rows or 0))
    return found


def _batches(conn: Connection, verdict: ContentVerdict) -> Iterator[tuple[int, list[bytes]]]:
    """The live rows' digests grouped by store event index (rows without one are counted, not yielded)."""
    current: int | None = None
    digests: list[bytes] = []
    for store_idx, digest, indexed in live_row_digests(conn):
        verdict.rows_checked += 1
        if not indexed:
            verdict.fail(
                f"batch stored at ledger index {store_idx} holds a row whose category_bits or tag_set no longer "
                "agree with its categories or tags (changed outside onshore: filters would select it wrongly)"
            )
        if store_idx is None:
            verdict.rows_not_covered += 1
            continue
        if store_idx != current:
            if current is not None:
                yield current, digests
            current, digests = store_idx, []
        digests.append(digest)
    if current is not None:
        yield current, digests


def check_content(log: MerkleLog, conn: Connection) -> ContentVerdict:
    """Re-derive every content commitment of ``log``'s region from the rows and tombstones in ``conn``."""
    verdict = ContentVerdict(region=log.region)
    committed = _commitments(log, conn)
    dead_by_batch: dict[int, list[bytes]] = defaultdict(list)
    dead_by_delete: dict[int, list[bytes]] = defaultdict(list)
    for store_idx, delete_idx, digest in tombstones(conn):
        verdict.tombstones_checked += 1
        dead_by_batch[store_idx].append(digest)
        dead_by_delete[delete_idx].append(digest)
    for delete_idx, digests in sorted(dead_by_delete.items()):
        event = committed.get(delete_idx)
        if event is None or event.kind != "delete":
            verdict.fail(f"{len(digests)} tombstone(s) name ledger index {delete_idx}, which is not a delete event")
        elif event.digest != set_digest(digests):
            verdict.fail(f"delete event at ledger index {delete_idx}: its tombstones do not match its digest")
    seen: set[int] = set()
    for store_idx, live in _batches(conn, verdict):
        seen.add(store_idx)
        _check_batch(verdict, store_idx, committed.get(store_idx), live, dead_by_batch.get(store_idx, []))
    for index, event in committed.items():
        if event.kind == "store" and index not in seen and (event.rows or index in dead_by_batch):
            _check_batch(verdict, index, event, [], dead_by_batch.get(index, []))
    return verdict


def _check_batch(
    verdict: ContentVerdict, index: int, event: _Commitment | None, live: list[bytes], dead: list[bytes]
) -> None:
    verdict.batches_checked += 1
    if event is None or event.kind != "store":
        verdict.fail(f"{len(live)} stored row(s) name ledger index {index}, which is not a store event")
        return
    if event.digest != set_digest([*live, *dead]):
        verdict.fail(
            f"batch stored at ledger index {index} ({event.rows} rows): its rows no longer match the store event "
            f"({len(live)} held, {len(dead)} removed with a delete event)"
        )


def check_region_stores(log: MerkleLog, conn: Connection) -> ContentVerdict:
    """The operator's whole check of one region from its own stores: the tree and the content.

    Recomputes the Merkle tree from the stored entries (every stored leaf and subtree hash must match), checks
    that the latest checkpoint recorded for the log still has the root the entries give at its size, then
    re-derives every content commitment (``check_content``).

    Args:
        log: the region's log.
        conn: a read connection to the region's record store.
    """
    try:
        log.audit(conn)
        tree_ok = True
    except LedgerIntegrityError as exc:
        tree_ok = False
        tree_failure = exc.message
    verdict = check_content(log, conn)
    if not tree_ok:
        verdict.fail(tree_failure)
    elif (latest := log.latest_checkpoint(conn)) is not None and log.audit(conn, latest.tree_size) != latest.root_hash:
        verdict.fail(f"the latest recorded checkpoint (size {latest.tree_size}) no longer matches the stored entries")
    return verdict
