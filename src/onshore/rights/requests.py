"""Data-subject requests: an access bundle of everything held about a person, and erasure by key destruction.

Access: each region produces its part of the bundle inside the region (its records decrypted with the
subject's key held there); the parts are joined for the subject. Erasure: the subject's data keys are destroyed
in every region first (from that instant every copy of their personal values, backups included, is unreadable),
then their rows are purged, consents deleted and bindings ended, each region in one transaction with a ledger
event. The ledger keeps verifying: its events never held the subject's data.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from onshore import clock
from onshore.errors import ConflictError
from onshore.model import LifecycleEvent
from onshore.rights.subjects import SubjectService
from onshore.rules.loader import RuleBook
from onshore.storage.region import Region

DEFAULT_DEADLINE_WORKING_DAYS = 10


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """``start`` plus ``days`` working days (Monday–Friday; public holidays are not modelled)."""
    current = start
    added = 0
    while added < days:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


@dataclass
class ErasureReport:
    subject_ref: str
    requested_at: str
    completed_at: str
    deadline: str
    deadline_working_days: int
    within_deadline: bool
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    derived_data: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


BlobEraser = Callable[[Region, str], int]  # (region, subject_ref) -> blobs deleted
TransfersOf = Callable[[Region, str], list[dict[str, Any]]]  # (region, subject_ref) -> releases abroad


class SubjectRequests:
    """Access and erasure requests.

    ``blob_eraser`` deletes the subject's blobs (camera frames) on erasure; ``transfers_of`` lists the releases
    abroad that carried the subject's data (the border gate's records), for the access bundle.
    """

    def __init__(
        self,
        subjects: SubjectService,
        rulebook: RuleBook,
        blob_eraser: BlobEraser | None = None,
        transfers_of: TransfersOf | None = None,
    ) -> None:
        self.subjects = subjects
        self.rulebook = rulebook
        self.blob_eraser = blob_eraser
        self.transfers_of = transfers_of

    def access_bundle(self, subject_ref: str, *, actor_role: str) -> dict[str, Any]:
        """Everything held about the subject, region by region, with a readable summary.

        Raises:
            NotFoundError: unknown subject.
        """
        now = clock.now_ms()
        parts: dict[str, Any] = {}
        purposes: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        retention: dict[str, list[dict[str, Any]]] = {}
        transfers: list[dict[str, Any]] = []
        for region in self.subjects.regions_of(subject_ref):
            if self.transfers_of is not None:
                transfers += [{"region": region.name, **t} for t in self.transfers_of(region, subject_ref)]
            rows: list[dict[str, Any]] = []
            after = 0
            while True:
                page = region.subjects.records_of(subject_ref, after_id=after, limit=5000)
                if not page:
                    break
                rows.extend(region.open_rows(page))
                after = page[-1]["id"]
            for row in rows:
                row["value"] = orjson.loads(row["value"]) if row["value"] is not None else None
                purposes[row["purpose"]] += 1
                categories.update(row["categories"].split(","))
                row.pop("subject_ref", None)
            pack = self.rulebook.for_jurisdiction(region.jurisdiction)
            retention[region.name] = [
                {
                    "rule": r.id,
                    "categories": [c.value for c in r.categories],
                    "tags": r.tags,
                    "days": r.days,
                    "source": f"{r.source.instrument} {r.source.article}",
                }
                for r in pack.pack.retention
                if r.active
            ]
            parts[region.name] = {
                "jurisdiction": region.jurisdiction,
                "storage_location": region.settings.location,
                "records": rows,
                "consents": region.subjects.consent_history(subject_ref),
                "bindings": [b.__dict__ for b in region.subjects.bindings_of_subject(subject_ref)],
            }
            # the copy's record count is attested in the ledger: a readable copy states this index
            parts[region.name]["ledger_index"] = region.store.append_events(
                [
                    LifecycleEvent(
                        kind="access_request",
                        region=region.name,
                        at_ms=now,
                        actor_role=actor_role,
                        counts={"records": len(rows)},
                    )
                ]
            )
        return {
            "subject": subject_ref,
            "generated_at": dt.datetime.fromtimestamp(now / 1000, dt.UTC).isoformat(),
            "summary": {
                "records": sum(len(p["records"]) for p in parts.values()),
                "by_purpose": dict(purposes),
                "by_category": dict(categories),
                "stored_in": [
                    {"region": n, "jurisdiction": p["jurisdiction"], "location": p["storage_location"]}
                    for n, p in parts.items()
                ],
                "retention": retention,
                "transfers_abroad": transfers,
            },
            "regions": parts,
        }

    def erase(self, subject_ref: str, *, actor_role: str, requested_at: dt.datetime | None = None) -> ErasureReport:
        """Erase the subject in every region; report completion against the pack's deadline.

        Raises:
            NotFoundError: unknown subject. ConflictError: already erased.
        """
        regions = self.subjects.regions_of(subject_ref)
        if all(r.subjects.erased(subject_ref) for r in regions):
            raise ConflictError("this subject's data was already erased")
        requested = requested_at or clock.now()
        packs = [self.rulebook.for_jurisdiction(r.jurisdiction).pack for r in regions]
        # the strictest deadline of the laws involved
        deadline_days = min(
            (p.erasure.deadline_working_days for p in packs if p.erasure), default=DEFAULT_DEADLINE_WORKING_DAYS
        )
        report_regions: dict[str, dict[str, Any]] = {}
        # 1. crypto-shred everywhere first: from here on nothing personal of theirs can be read anywhere.
        for region in regions:
            report_regions[region.name] = {"key_destroyed": region.subject_keys.destroy(subject_ref)}
        # 2. delete their blobs (anonymised and raw camera frames) while the rows still say which they are.
        for region in regions:
            if self.blob_eraser is not None and not region.subjects.erased(subject_ref):
                report_regions[region.name]["blobs_deleted"] = self.blob_eraser(region, subject_ref)
        # 3. purge rows, consents and bindings, one transaction and one ledger event per region.
        now = clock.now_ms()
        for region in regions:
            if region.subjects.erased(subject_ref):
                continue
            request_event = LifecycleEvent(
                kind="erasure_request",
                region=region.name,
                at_ms=int(requested.timestamp() * 1000),
                actor_role=actor_role,
            )
            purged = region.subjects.purge(subject_ref, now, [request_event])
            report_regions[region.name].update(
                records_purged=purged.records,
                consents_deleted=purged.consents,
                bindings_ended=purged.bindings,
                ledger_index=purged.ledger_index,
            )
        completed = clock.now()
        deadline = add_working_days(requested, deadline_days)
        return ErasureReport(
            subject_ref=subject_ref,
            requested_at=requested.isoformat(),
            completed_at=completed.isoformat(),
            deadline=deadline.isoformat(),
            deadline_working_days=deadline_days,
            within_deadline=completed <= deadline,
            regions=report_regions,
            derived_data=[
                "ledger events: hold counts and digests only, never this person's data; they stay and still verify",
                "pseudonymous vehicle id: kept while the vehicle stays registered; it is not linked to this "
                "person any more (bindings ended)",
                "aggregates and statistics computed before the erasure are not recomputed",
                "export bundles already released abroad are outside onshore's reach; the recipient must be told "
                "(see the border gate's transfer records)",
            ],
        )
