"""Minimise: the consent gate, precision limits, and the rows that may be stored.

* Collection of personal data is off until the subject consents for that purpose (Provisions Art. 6(2),
  Art. 8); sensitive personal data needs separate consent (Art. 9). Records without it are dropped
  here and only counted.
* Positions are coarsened to the precision the pack sets (Art. 6(3)).
* The vehicle is stored under its region-keyed pseudonym; the VIN never reaches the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from onshore.model import ClassifiedBatch, StoredRows
from onshore.rules.loader import LoadedPack

CONSENT_LEVELS = {"ordinary": 1, "separate": 2}


def _coarsen(value: Any, decimals: int) -> Any:
    if isinstance(value, dict):
        return {
            "latitude": round(value["latitude"], decimals),
            "longitude": round(value["longitude"], decimals),
        }
    if isinstance(value, float):
        return round(value, decimals)
    return value


def minimize(classified: ClassifiedBatch, pack: LoadedPack, consents: Mapping[str, str]) -> StoredRows:
    """Apply the consent gate and precision limits to a classified batch.

    Args:
        classified: the output of the classify stage.
        pack: the rule pack of the batch's origin.
        consents: purpose → consent level (``"ordinary"`` or ``"separate"``) in force for the
            batch's subject at the time of collection.
    """
    batch = classified.batch
    vehicle = batch.vehicle
    decimals = pack.location_decimals
    rows: list[tuple[Any, ...]] = []
    dropped_by_purpose: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    need_cache: dict[tuple[Any, ...], str | None] = {}
    dumps = orjson.dumps
    zone_hits = 0
    for i in range(len(batch)):
        cats = classified.categories[i]
        need = need_cache.get(cats, "?")
        if need == "?":
            need = pack.consent_required(cats)
            need_cache[cats] = need
        purpose = classified.purposes[i]
        if classified.zones[i] is not None:
            zone_hits += 1
        if need is not None:
            have = consents.get(purpose)
            if have is None or CONSENT_LEVELS[have] < CONSENT_LEVELS[need]:
                dropped_by_purpose[purpose] += 1
                continue
        value = classified.values[i]
        tags = classified.tags[i]
        if decimals is not None and "location" in tags:
            value = _coarsen(value, decimals)
        for c in cats:
            by_category[c] += 1
        rows.append(
            (
                vehicle.ref,
                batch.msg_ids[i],
                batch.ts_ms[i],
                batch.signals[i],
                dumps(value).decode(),
                ",".join(cats),
                ",".join(tags),
                purpose,
                classified.rules[i].rule_id,
                classified.origin,
                classified.zones[i],
                batch.received_ms,
            )
        )
    return StoredRows(
        origin=classified.origin,
        vehicle=vehicle,
        received_ms=batch.received_ms,
        rows=rows,
        dropped_no_consent=sum(dropped_by_purpose.values()),
        dropped_by_purpose=dict(dropped_by_purpose),
        by_category=dict(by_category),
        zone_hits=zone_hits,
        duplicates_in_batch=batch.duplicates_in_batch,
        unclassified_signals=classified.unclassified_signals,
    )
