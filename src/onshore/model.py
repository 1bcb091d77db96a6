"""Types shared by the pipeline stages. Stages depend on these, never on each other's internals.

The hot path is batch-shaped and column-oriented: a batch holds one vehicle's records as parallel
lists, so the stages loop over plain lists instead of building an object per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Vehicle:
    """An authenticated vehicle. ``ref`` is the region-keyed pseudonym of its VIN; the VIN is never kept."""

    ref: str
    market: str  # jurisdiction of the market the vehicle was sold into: the origin of its data
    region: str


@dataclass(slots=True)
class SignalBatch:
    """One vehicle's admitted records, structurally valid and de-duplicated within the batch."""

    vehicle: Vehicle
    received_ms: int
    msg_ids: list[str]
    ts_ms: list[int]
    signals: list[str]
    values: list[Any]
    purposes: list[str | None]
    profiles: list[str | None]
    duplicates_in_batch: int = 0

    def __len__(self) -> int:
        return len(self.msg_ids)


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """What the rule pack says about one signal name."""

    rule_id: str
    categories: tuple[str, ...]  # Category values
    tags: tuple[str, ...]
    purposes: tuple[str, ...]
    value_kind: str
    article: str
    known: bool  # False when the pack's default rule classified an unknown signal
    categories_csv: str = ""  # precomputed storage forms of categories and tags
    tags_csv: str = ""


@dataclass(slots=True)
class ClassifiedBatch:
    """A batch with each record's rule, categories and tags, and its sensitive-zone hit."""

    batch: SignalBatch
    origin: str  # jurisdiction the data was collected under
    rules: list[ResolvedRule]
    categories: list[tuple[str, ...]]
    tags: list[tuple[str, ...]]
    purposes: list[str]
    values: list[Any]  # normalised (e.g. location strings parsed into {"latitude","longitude"})
    zones: list[str | None]
    unclassified_signals: list[str]


@dataclass(slots=True)
class RecordColumns:
    """Records to store as a typed column batch: one list per column of ``RECORD_COLUMNS``, all the same length.

    Stages read and replace whole columns by name (``encrypt`` swaps ``value``); only storage turns the batch
    into driver parameter rows.
    """

    vehicle_ref: list[str] = field(default_factory=list)
    msg_id: list[str] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    signal: list[str] = field(default_factory=list)
    value: list[str | None] = field(default_factory=list)  # JSON text, or its ciphertext
    categories: list[str] = field(default_factory=list)  # comma-joined Category values
    tags: list[str] = field(default_factory=list)  # comma-joined tags
    purpose: list[str] = field(default_factory=list)
    rule_id: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    zone: list[str | None] = field(default_factory=list)
    received_ms: list[int] = field(default_factory=list)
    subject_ref: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.msg_id)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> RecordColumns:
        """A batch from rows in ``RECORD_COLUMNS`` order, or mappings by column name (a missing zone is None)."""
        tuples = [tuple(r.get(c) for c in RECORD_COLUMNS) if isinstance(r, Mapping) else tuple(r) for r in rows]
        if not tuples:
            return cls()
        return cls(*(list(col) for col in zip(*tuples, strict=True)))

    def column(self, name: str) -> list[Any]:
        """The column ``name`` (one of ``RECORD_COLUMNS``)."""
        return getattr(self, name)  # type: ignore[no-any-return]

    def take(self, indexes: Sequence[int]) -> RecordColumns:
        """A new batch of the records at ``indexes``, in that order."""
        return RecordColumns(*([col[i] for i in indexes] for col in self.columns()))

    def columns(self) -> tuple[list[Any], ...]:
        """Every column, in ``RECORD_COLUMNS`` order."""
        return (
            self.vehicle_ref,
            self.msg_id,
            self.ts_ms,
            self.signal,
            self.value,
            self.categories,
            self.tags,
            self.purpose,
            self.rule_id,
            self.origin,
            self.zone,
            self.received_ms,
            self.subject_ref,
        )


@dataclass(slots=True)
class StoredRows:
    """The minimised records ready for the region store, with what was dropped and why."""

    origin: str
    vehicle: Vehicle
    received_ms: int
    records: RecordColumns
    dropped_no_consent: int
    dropped_by_purpose: dict[str, int]
    by_category: dict[str, int]
    zone_hits: int
    duplicates_in_batch: int
    unclassified_signals: list[str]


# The columns of a stored record, in the order of ``RecordColumns`` (and of the content encoding).
RECORD_COLUMNS = (
    "vehicle_ref",
    "msg_id",
    "ts_ms",
    "signal",
    "value",
    "categories",
    "tags",
    "purpose",
    "rule_id",
    "origin",
    "zone",
    "received_ms",
    "subject_ref",
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest batch did, as returned to the client."""

    region: str
    received: int
    accepted: int
    duplicate: int
    dropped_no_consent: int
    by_category: dict[str, int]
    zone_hits: int
    unclassified_signals: list[str]
    ledger_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "received": self.received,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "dropped_no_consent": self.dropped_no_consent,
            "rejected": 0,
            "by_category": self.by_category,
            "zone_hits": self.zone_hits,
            "unclassified_signals": self.unclassified_signals,
            "ledger_index": self.ledger_index,
        }


@dataclass
class FrameResult:
    """What happened to one camera frame, as returned to the vehicle (no personal data)."""

    region: str
    msg_id: str
    stored: bool
    duplicate: bool = False
    conditions: list[str] = field(default_factory=list)
    dropped: str | None = None  # sensitive_zone | no_consent | hard_conditions
    rule_id: str | None = None
    categories: list[str] = field(default_factory=list)
    faces: int = 0
    plates: int = 0
    raw_kept: bool = False
    ledger_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One lifecycle operation, as handed to the region's ledger. Digests and counts, never personal data."""

    kind: str  # collect | store | query | transmit | provide_abroad | delete | consent_change | basis_change
    region: str
    at_ms: int
    actor_role: str
    purpose: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    digest: str | None = None  # hex SHA-256: over the content of the rows concerned (v 2), or their ids (v 1)
    basis_id: str | None = None
    version: int = 1  # 2: a store/delete event whose digest commits to row content (``storage.content``)

    def to_bytes(self) -> bytes:
        """Canonical encoding: the ledger leaf data."""
        return orjson.dumps(
            {
                "v": self.version,
                "kind": self.kind,
                "region": self.region,
                "at_ms": self.at_ms,
                "actor_role": self.actor_role,
                "purpose": self.purpose,
                "counts": self.counts,
                "digest": self.digest,
                "basis_id": self.basis_id,
            },
            option=orjson.OPT_SORT_KEYS,
        )
