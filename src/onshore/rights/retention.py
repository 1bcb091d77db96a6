"""Retention: delete stored data older than the pack's retention rule for its category, tag and purpose."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from onshore import clock
from onshore.model import LifecycleEvent
from onshore.rules.loader import RuleBook
from onshore.rules.schema import RetentionRule
from onshore.storage.content import CONTENT_EVENT_VERSION, delete_records
from onshore.storage.partitions import drop_expired_partitions
from onshore.storage.predicates import RecordFilter
from onshore.storage.region import Region


@dataclass(frozen=True)
class RetentionResult:
    region: str
    rule_id: str
    deleted: int
    ledger_index: int | None
    partition: str | None = None  # the month partition dropped whole (``PARTITION_DROP_ID``)


def expired(rule: RetentionRule, cutoff_ms: int) -> RecordFilter:
    """The records ``rule`` keeps no longer: one of its categories or tags, its purposes, older than the cutoff."""
    return RecordFilter(
        categories=tuple(c.value for c in rule.categories),
        tags=tuple(rule.tags),
        purposes=tuple(rule.purposes or ()),
        until_ms=cutoff_ms,
    )


FRAME_SWEEP_ID = "frames.sweep"
PARTITION_DROP_ID = "records.partition"
BlobSweeper = Callable[..., dict[str, int]]  # (region, *, now_ms) -> counts of blobs removed


class RetentionService:
    """Runs the packs' retention rules; ``blob_sweeper`` also removes blobs whose records are gone."""

    def __init__(self, rulebook: RuleBook, regions: dict[str, Region], blob_sweeper: BlobSweeper | None = None):
        self.rulebook = rulebook
        self.regions = regions
        self.blob_sweeper = blob_sweeper

    def run(self, *, now_ms: int | None = None) -> list[RetentionResult]:
        """Delete what has expired under every active retention rule; one ledger event per rule that deleted.

        Where the record store is partitioned by month (PostgreSQL), a month whose every record has expired under
        one rule or another is dropped whole first, with its own delete event (a ``records.partition`` result);
        the rules then delete the expired rows left in the other months.
        """
        now_ms = clock.now_ms() if now_ms is None else now_ms
        results = []
        for region in self.regions.values():
            pack = self.rulebook.for_jurisdiction(region.jurisdiction)
            rules = [r for r in pack.pack.retention if r.active or r.id in pack.enabled_overrides]
            filters = [expired(rule, now_ms - int(rule.days * 86_400_000)) for rule in rules]

            def make_event(deleted: int, digest: str | None, region: Region = region, **more: int) -> LifecycleEvent:
                return LifecycleEvent(
                    kind="delete",
                    region=region.name,
                    at_ms=now_ms,
                    actor_role="system",
                    purpose="retention",
                    counts={"records": deleted, **more},
                    digest=digest,
                    version=CONTENT_EVENT_VERSION,
                )

            for dropped in drop_expired_partitions(
                region.store, filters, functools.partial(make_event, partitions=1), now_ms=now_ms
            ):
                results.append(
                    RetentionResult(region.name, PARTITION_DROP_ID, dropped.records, dropped.ledger_index, dropped.name)
                )
            for rule, where in zip(rules, filters, strict=True):
                with region.store.transaction("retention") as conn:
                    deleted, index = delete_records(conn, where, region.store.journal, make_event)
                results.append(RetentionResult(region.name, rule.id, deleted, index))
            if self.blob_sweeper is not None:
                results.append(self._sweep_blobs(region, now_ms))
        return results

    def _sweep_blobs(self, region: Region, now_ms: int) -> RetentionResult:
        """Blobs of deleted or erased records, and raw frames past their retention (one ledger event)."""
        assert self.blob_sweeper is not None
        counts = {k: v for k, v in self.blob_sweeper(region, now_ms=now_ms).items() if v}
        index = None
        if counts:
            event = LifecycleEvent(
                kind="delete", region=region.name, at_ms=now_ms, actor_role="system", purpose="retention", counts=counts
            )
            index = region.store.append_events([event])
        return RetentionResult(region.name, FRAME_SWEEP_ID, sum(counts.values()), index)
