"""The release pipeline of one transfer: read the selected records, decrypt, transform per class, write.

Column-shaped and chunked: records are read ``chunk`` at a time in id order, grouped by data class, and each
class's transforms run over whole columns. Who leaves is noted per class (after removals, before refs are
re-keyed or rows aggregated) for the counters. Region pseudonyms never leave: every record's refs are re-keyed
for the recipient even when the pack does not name ``pseudonymise`` for its class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from onshore.border.bundles import BundleWriter
from onshore.border.decisions import ClassDecision
from onshore.border.requests import ExportRequest
from onshore.border.selection import RecordSelection, class_key
from onshore.deid.pseudonyms import recipient_key
from onshore.deid.transforms import Columns, TransformContext, get_transform, release_flows
from onshore.rules.loader import LoadedPack
from onshore.storage.crypto import decrypt_value, is_encrypted
from onshore.storage.records import RecordRow
from onshore.storage.region import Region

RECIPIENT_KEY = "border-pseudonym"  # name of the region-held key the per-recipient keys derive from
Progress = Callable[[int, int], None]
Provided = set[tuple[str, str, str | None]]  # (subject_ref, kind pi|sensitive, basis id)


@dataclass
class ExportOutput:
    """Per class: records released and the transforms' tallies; who left; the flow statistics."""

    stats: dict[str, dict[str, int]]
    provided: dict[str, Provided]
    flows: list[dict[str, Any]]


def export_classes(
    region: Region,
    pack: LoadedPack,
    request: ExportRequest,
    allowed: Mapping[str, ClassDecision],
    writer: BundleWriter,
    progress: Progress | None = None,
) -> ExportOutput:
    """Write the allowed classes of ``request`` through their transforms into ``writer``."""
    ctx = TransformContext(recipient_key(region.keys.key(RECIPIENT_KEY), request.recipient), pack.zones)
    plans = {key: [(get_transform(t.name), t.params, t.name) for t in c.transforms] for key, c in allowed.items()}
    rekey = get_transform("pseudonymise")
    provided: dict[str, Provided] = defaultdict(set)
    released: dict[str, int] = defaultdict(int)
    total = sum(c.data_class.records for c in allowed.values())
    done = 0
    with region.store.read("export records") as conn:
        for chunk in RecordSelection(request).iter_rows(conn):
            values = open_values(region, chunk)
            groups: dict[str, list[int]] = defaultdict(list)
            for i, row in enumerate(chunk):
                key = class_key(row.rule_id, row.categories, row.tags)
                if key in allowed:
                    groups[key].append(i)
            for key, idx in groups.items():
                cols = _columns(key, chunk, values, idx, ctx)
                basis_id = allowed[key].basis_id
                noted = False
                for transform, params, name in plans[key]:
                    if name in ("aggregate", "pseudonymise") and not noted:
                        _note_people(cols, basis_id, provided[key])
                        noted = True
                    cols = transform(cols, params, ctx)
                if not noted:
                    _note_people(cols, basis_id, provided[key])
                if not any(name == "pseudonymise" for _, _, name in plans[key]):
                    cols = rekey(cols, {}, ctx)
                released[key] += len(cols)
                writer.write(cols)
            done += len(chunk)
            if progress is not None:
                progress(min(done, total), total)
    stats = {key: {"records_released": released[key], **ctx.stats.get(key, {})} for key in allowed}
    return ExportOutput(stats, dict(provided), release_flows(ctx))


def open_values(region: Region, chunk: list[RecordRow]) -> list[str | None]:
    """Decrypt personal values; a subject whose key was destroyed reads as None (erased: never exported)."""
    sealed = {row.subject_ref for row in chunk if is_encrypted(row.value)}
    keys = region.subject_keys.keys_for(sealed, create=False) if sealed else {}
    out: list[str | None] = []
    for row in chunk:
        value = row.value
        if value is not None and is_encrypted(value):
            key = keys.get(row.subject_ref)
            value = None if key is None else decrypt_value(key, region.name, row.vehicle_ref, row.msg_id, value)
        out.append(value)
    return out


def _columns(
    key: str, chunk: list[RecordRow], values: list[str | None], idx: list[int], ctx: TransformContext
) -> Columns:
    keep = [i for i in idx if values[i] is not None or chunk[i].value is None]
    if len(keep) != len(idx):
        ctx.tally(key, "erased_subject_records", len(idx) - len(keep))
    rows = [chunk[i] for i in keep]
    return Columns(
        cls=[key] * len(keep),
        ts_ms=[r.ts_ms for r in rows],
        signal=[r.signal for r in rows],
        value=[values[i] for i in keep],
        categories=[r.categories for r in rows],
        tags=[r.tags for r in rows],
        purpose=[r.purpose for r in rows],
        vehicle=[r.vehicle_ref for r in rows],
        subject=[r.subject_ref for r in rows],
        zone=[r.zone for r in rows],
    )


def people_kind(categories: str) -> str | None:
    """``sensitive``, ``pi`` or None: which counter a record's subject counts in."""
    cats = categories.split(",")
    if "sensitive_personal" in cats:
        return "sensitive"
    return "pi" if "personal" in cats else None


def _note_people(cols: Columns, basis_id: str | None, into: Provided) -> None:
    kinds: dict[str, str | None] = {}
    for cats, subject in zip(cols.categories, cols.subject, strict=True):
        if cats not in kinds:
            kinds[cats] = people_kind(cats)
        kind = kinds[cats]
        if kind is not None:
            into.add((subject, kind, basis_id))
