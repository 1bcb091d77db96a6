"""Store: route a minimised batch to the region of its origin and commit it with its events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from onshore.errors import ResidencyError
from onshore.model import LifecycleEvent, StoredRows
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


def store(stored: StoredRows, events: Sequence[LifecycleEvent], router: RegionRouter) -> tuple[Region, CommitResult]:
    """Commit rows and events to the origin's region, atomically."""
    region = router.region_for(stored.origin)
    return region, region.store.commit_batch(stored, events)
