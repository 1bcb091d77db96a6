"""Minimise: the consent gate, precision limits, and the rows that may be stored.

* Collection of personal data is off until the subject consents for that purpose (Provisions Art. 6(2),
  Art. 8); sensitive personal data needs separate consent (Art. 9). Records without it are dropped
  here and only counted.
* Positions are coarsened to the precision the pack sets (Art. 6(3)).
* The vehicle is stored under its region-keyed pseudonym; the VIN never reaches the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from onshore.deid.coarsen import round_position
from onshore.model import ClassifiedBatch, StoredRows
from onshore.rules.loader import LoadedPack

CONSENT_LEVELS = {"ordinary": 1, "separate": 2}


def consent_allows(pack: LoadedPack, categories: Iterable[str], have: str | None) -> bool:
    """Whether consent at level ``have`` (None: none in force) allows collecting data of ``categories``."""
    need = pack.consent_required(categories)
    return need is None or (have is not None and CONSENT_LEVELS[have] >= CONSENT_LEVELS[need])


def minimize(
    classified: ClassifiedBatch,
    pack: LoadedPack,
    subjects: Sequence[str],
    consents: Mapping[str, Mapping[str, str]],
) -> StoredRows:
    """Apply the consent gate and precision limits to a classified batch.

    Args:
        classified: the output of the classify stage.
        pack: the rule pack of the batch's origin.
        subjects: the subject of each record (from vehicle, time and driver profile).
        consents: subject → purpose → consent level (``"ordinary"`` or ``"separate"``) in force now.
    """
    batch = classified.batch
    vehicle = batch.vehicle
    ref = vehicle.ref
    origin = classified.origin
    received = batch.received_ms
    decimals = pack.location_decimals
    rules = classified.rules
    all_cats = classified.categories
    all_tags = classified.tags
    zones = classified.zones
    purposes = classified.purposes
    values = classified.values
    msg_ids = batch.msg_ids
    ts_ms = batch.ts_ms
    signals = batch.signals
    rows: list[tuple[Any, ...]] = []
    dropped_by_purpose: Counter[str] = Counter()
    cat_counts: Counter[tuple[str, ...]] = Counter()
    # the consent a category set needs, and whether it is there: decided once per (categories, purpose)
    allowed: dict[tuple[tuple[str, ...], str, str], bool] = {}
    dumps = orjson.dumps
    zone_hits = 0
    for i in range(len(msg_ids)):
        cats = all_cats[i]
        purpose = purposes[i]
        subject = subjects[i]
        key = (cats, purpose, subject)
        ok = allowed.get(key)
        if ok is None:
            ok = allowed[key] = consent_allows(pack, cats, consents.get(subject, {}).get(purpose))
        zone = zones[i]
        if zone is not None:
            zone_hits += 1
        if not ok:
            dropped_by_purpose[purpose] += 1
            continue
        rule = rules[i]
        tags = all_tags[i]
        value = values[i]
        if decimals is not None and "location" in tags:
            value = round_position(value, decimals)
        cat_counts[cats] += 1
        rows.append(
            (
                ref,
                msg_ids[i],
                ts_ms[i],
                signals[i],
                dumps(value).decode(),
                rule.categories_csv if cats is rule.categories else ",".join(cats),
                rule.tags_csv if tags is rule.tags else ",".join(tags),
                purpose,
                rule.rule_id,
                origin,
                zone,
                received,
                subject,
            )
        )
    by_category: Counter[str] = Counter()
    for cats, count in cat_counts.items():
        for c in cats:
            by_category[c] += count
    return StoredRows(
        origin=origin,
        vehicle=vehicle,
        received_ms=received,
        rows=rows,
        dropped_no_consent=sum(dropped_by_purpose.values()),
        dropped_by_purpose=dict(dropped_by_purpose),
        by_category=dict(by_category),
        zone_hits=zone_hits,
        duplicates_in_batch=batch.duplicates_in_batch,
        unclassified_signals=classified.unclassified_signals,
    )
