"""Store: route a minimised batch to the region of its origin and commit it with its events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from onshore.errors import ResidencyError
from onshore.model import LifecycleEvent, StoredRows
from onshore.storage.crypto import encrypt_values
from onshore.storage.processed import BatchClaim
from onshore.storage.region import Region
from onshore.storage.sql import CommitResult


class RegionRouter:
    """Maps an origin jurisdiction to the one region that may hold its data."""

    def __init__(self, regions: Mapping[str, Region]) -> None:
        self.regions = dict(regions)
        self._by_jurisdiction: dict[str, Region] = {}
        for region in self.regions.values():
            self._by_jurisdiction.setdefault(region.jurisdiction, region)

    def region_for(self, origin: str) -> Region:
        """Raises ResidencyError when no region of ``origin``'s jurisdiction is configured."""
        region = self._by_jurisdiction.get(origin)
        if region is None:
            raise ResidencyError(
                f"no region of jurisdiction {origin!r} is configured; data of that origin cannot be stored"
            )
        return region


def store(
    stored: StoredRows,
    events: Sequence[LifecycleEvent],
    router: RegionRouter,
    *,
    encrypt: bool = True,
    once: BatchClaim[CommitResult] | None = None,
) -> tuple[Region, CommitResult]:
    """Encrypt personal values under their subjects' keys, then commit rows and events to the origin's region.

    Raises:
        AlreadyProcessedError: with ``once`` (a bus batch), the batch was committed before; nothing was written.
    """
    region = router.region_for(stored.origin)
    if encrypt:
        encrypt_personal_values(region, stored)
    return region, region.store.commit_batch(stored, events, once=once)


def encrypt_personal_values(region: Region, stored: StoredRows) -> None:
    """Replace the value of every personal record by its AES-GCM ciphertext under the subject's data key."""
    records = stored.records
    personal: dict[str, bool] = {}
    by_subject: dict[str, list[int]] = {}
    for i, (cats, subject) in enumerate(zip(records.categories, records.subject_ref, strict=True)):
        is_personal = personal.get(cats)
        if is_personal is None:
            is_personal = personal[cats] = "personal" in cats.split(",")
        if is_personal:
            by_subject.setdefault(subject, []).append(i)
    if not by_subject:
        return
    keys = region.subject_keys.keys_for(by_subject, create=True)
    ref = stored.vehicle.ref
    msg_ids = records.msg_id
    values: list[Any] = list(records.value)  # a new column: the plaintext column may be shared with the caller's batch
    for subject, indexes in by_subject.items():
        sealed = encrypt_values(
            keys[subject], region.name, ref, [msg_ids[i] for i in indexes], [values[i] for i in indexes]
        )
        for i, text in zip(indexes, sealed, strict=True):
            values[i] = text
    records.value = values
