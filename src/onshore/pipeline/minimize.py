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

import orjson

from onshore.deid.coarsen import round_position
from onshore.model import ClassifiedBatch, RecordColumns, StoredRows
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
    decimals = pack.location_decimals
    all_cats = classified.categories
    zones = classified.zones
    purposes = classified.purposes
    msg_ids = batch.msg_ids
    dropped_by_purpose: Counter[str] = Counter()
    # the consent a category set needs, and whether it is there: decided once per (categories, purpose)
    allowed: dict[tuple[tuple[str, ...], str, str], bool] = {}
    keep: list[int] = []
    zone_hits = 0
    for i in range(len(msg_ids)):
        cats = all_cats[i]
        purpose = purposes[i]
        subject = subjects[i]
        key = (cats, purpose, subject)
        ok = allowed.get(key)
        if ok is None:
            ok = allowed[key] = consent_allows(pack, cats, consents.get(subject, {}).get(purpose))
        if zones[i] is not None:
            zone_hits += 1
        if ok:
            keep.append(i)
        else:
            dropped_by_purpose[purpose] += 1
    columns = _columns(classified, keep, subjects, decimals)
    cat_counts = Counter(all_cats[i] for i in keep)
    by_category: Counter[str] = Counter()
    for cats, count in cat_counts.items():
        for c in cats:
            by_category[c] += count
    return StoredRows(
        origin=classified.origin,
        vehicle=vehicle,
        received_ms=batch.received_ms,
        records=columns,
        dropped_no_consent=sum(dropped_by_purpose.values()),
        dropped_by_purpose=dict(dropped_by_purpose),
        by_category=dict(by_category),
        zone_hits=zone_hits,
        duplicates_in_batch=batch.duplicates_in_batch,
        unclassified_signals=classified.unclassified_signals,
    )


def _columns(
    classified: ClassifiedBatch, keep: list[int], subjects: Sequence[str], decimals: int | None
) -> RecordColumns:
    """The kept records as a column batch: one list comprehension per column, the values JSON-encoded."""
    batch = classified.batch
    rules = classified.rules
    all_cats = classified.categories
    all_tags = classified.tags
    values = classified.values
    dumps = orjson.dumps
    n = len(keep)
    if n == len(batch.msg_ids):  # everything kept (the common case): the batch's own columns, not copies
        msg_id, ts_ms, signal = batch.msg_ids, batch.ts_ms, batch.signals
        purpose, zone, subject_ref = classified.purposes, classified.zones, list(subjects)
    else:
        msg_id = [batch.msg_ids[i] for i in keep]
        ts_ms = [batch.ts_ms[i] for i in keep]
        signal = [batch.signals[i] for i in keep]
        purpose = [classified.purposes[i] for i in keep]
        zone = [classified.zones[i] for i in keep]
        subject_ref = [subjects[i] for i in keep]
    value: list[str | None]
    if decimals is None:
        value = [dumps(values[i]).decode() for i in keep]
    else:  # positions are coarsened to the pack's precision (Art. 6(3))
        value = [
            dumps(round_position(values[i], decimals) if "location" in all_tags[i] else values[i]).decode()
            for i in keep
        ]
    categories = []
    tags = []
    for i in keep:
        rule = rules[i]
        cats = all_cats[i]
        tag = all_tags[i]
        categories.append(rule.categories_csv if cats is rule.categories else ",".join(cats))
        tags.append(rule.tags_csv if tag is rule.tags else ",".join(tag))
    return RecordColumns(
        vehicle_ref=[batch.vehicle.ref] * n,
        msg_id=msg_id,
        ts_ms=ts_ms,
        signal=signal,
        value=value,
        categories=categories,
        tags=tags,
        purpose=purpose,
        rule_id=[rules[i].rule_id for i in keep],
        origin=[classified.origin] * n,
        zone=zone,
        received_ms=[batch.received_ms] * n,
        subject_ref=subject_ref,
    )
