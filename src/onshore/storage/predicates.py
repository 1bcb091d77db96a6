"""The one filter over stored records, and the index forms of categories and tags it filters on.

Categories are kept twice: as content (``records.categories``, comma-joined, what the ledger commits to) and as
a derived index, ``records.category_bits`` (one bit per category, ``CATEGORY_BITS``), so "has category x" is
``category_bits IN (every mask holding x's bit)``: an equality list a B-tree serves, where ``LIKE '%,x,%'`` on
the text is a scan. Tags are an open vocabulary (the rule packs name them), so they get no bits: on PostgreSQL
``records.tag_set`` is a text array under a GIN index (``tag_set && ARRAY[...]``); on SQLite, which indexes no
array, it is the comma-wrapped text (``,a,b,``) matched with ``LIKE``.

``RecordFilter`` is what border selection, retention, rights and ``/v1/records`` ask for; it becomes SQL here
and nowhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, literal, or_, true
from sqlalchemy.dialects.postgresql import ARRAY, array

from onshore.errors import InputError
from onshore.storage.schema import records

# Bit of each category in ``records.category_bits``. Stored rows hold these bits: append new categories with new
# bits, never renumber (migration 0004 filled existing rows with this mapping).
CATEGORY_BITS: dict[str, int] = {
    "personal": 1,
    "sensitive_personal": 2,
    "important": 4,
    "general": 8,
}
_ALL_MASKS = range(1 << len(CATEGORY_BITS))


@functools.lru_cache(maxsize=256)
def category_bits(categories_csv: str, *, strict: bool = True) -> int:
    """The ``category_bits`` of a comma-joined category list.

    Args:
        strict: refuse a name without a bit; otherwise it adds no bit (as migration 0004 filled old rows).

    Raises:
        InputError: ``strict`` and a category has no bit (it is not one of ``CATEGORY_BITS``).
    """
    bits = 0
    for name in categories_csv.split(",") if categories_csv else ():
        bit = CATEGORY_BITS.get(name)
        if bit is None and strict:
            raise InputError(f"category {name!r} has no storage bit; known: {', '.join(CATEGORY_BITS)}")
        bits |= bit or 0
    return bits


def _bits_of(names: Iterable[str]) -> int:
    return category_bits(",".join(sorted(set(names))))


def category_masks(any_of: Sequence[str] = (), all_of: Sequence[str] = (), none_of: Sequence[str] = ()) -> list[int]:
    """Every ``category_bits`` value holding one of ``any_of`` (if given), all of ``all_of`` and none of ``none_of``."""
    want_any, want_all, refuse = _bits_of(any_of), _bits_of(all_of), _bits_of(none_of)
    return [m for m in _ALL_MASKS if (not any_of or m & want_any) and m & want_all == want_all and not m & refuse]


def tag_set_sqlite(tags_csv: str) -> str:
    """SQLite's ``tag_set``: the tags comma-wrapped (``,a,b,``), so one ``LIKE '%,a,%'`` finds a whole tag."""
    return f",{tags_csv}," if tags_csv else ""


def tag_set_postgres(tags_csv: str) -> list[str]:
    """PostgreSQL's ``tag_set``: the tags as a text array (served by a GIN index)."""
    return tags_csv.split(",") if tags_csv else []


def tags_any(dialect: str, tags: Sequence[str]) -> ColumnElement[bool]:
    """Records carrying at least one of ``tags`` (each matched whole, never as a substring)."""
    if dialect == "postgresql":
        return records.c.tag_set.op("&&")(cast(array(list(tags)), ARRAY(Text())))  # type: ignore[no-any-return]
    return or_(*[records.c.tag_set.like(f"%,{tag},%") for tag in tags])


@dataclass(frozen=True)
class RecordFilter:
    """Which stored records a reader asks for; every field left empty matches everything.

    ``categories`` and ``tags`` together are one any-of list of labels: a record matches when it carries one of
    the categories *or* one of the tags (a retention rule names both). ``with_categories`` and
    ``without_categories`` narrow further (all of, none of). Times are ``since_ms <= ts_ms < until_ms``.
    """

    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    with_categories: tuple[str, ...] = ()
    without_categories: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    vehicles: tuple[str, ...] = ()
    subject: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    after_id: int = 0

    def __post_init__(self) -> None:
        for name in (*self.categories, *self.with_categories, *self.without_categories):
            if name not in CATEGORY_BITS:
                raise InputError(f"category {name!r} is unknown; valid: {', '.join(CATEGORY_BITS)}")

    def where(self, dialect: str) -> ColumnElement[bool]:
        """The SQL condition on ``records`` for a connection of ``dialect`` (``conn.dialect.name``)."""
        c = records.c
        clauses: list[ColumnElement[bool]] = []
        if self.after_id:
            clauses.append(c.id > self.after_id)
        if self.since_ms is not None:
            clauses.append(c.ts_ms >= self.since_ms)
        if self.until_ms is not None:
            clauses.append(c.ts_ms < self.until_ms)
        masked = False  # whether a category_bits condition is ANDed in (the leading column of the time index)
        if self.with_categories or self.without_categories:
            clauses.append(_in_masks(category_masks((), self.with_categories, self.without_categories)))
            masked = True
        labels: list[ColumnElement[bool]] = []
        if self.categories:
            labels.append(_in_masks(category_masks(self.categories)))
        if self.tags:
            labels.append(tags_any(dialect, self.tags))
        if labels:
            clauses.append(or_(*labels))
            masked = masked or not self.tags
        if not masked and (self.since_ms is not None or self.until_ms is not None):
            # Every row's bits are one of these, so this matches everything; it lets ix_records_category_ts
            # (category_bits, ts_ms) serve a time range alone, one probe per mask (there is no index on ts_ms).
            clauses.append(records.c.category_bits.in_(list(_ALL_MASKS)))
        if self.purposes:
            clauses.append(c.purpose.in_(self.purposes))
        if self.signals:
            clauses.append(c.signal.in_(self.signals))
        if self.vehicles:
            clauses.append(c.vehicle_ref.in_(self.vehicles))
        if self.subject is not None:
            clauses.append(c.subject_ref == self.subject)
        return and_(*clauses) if clauses else true()


def _in_masks(masks: list[int]) -> ColumnElement[bool]:
    if not masks:
        return literal(False)  # no stored combination can match
    return records.c.category_bits.in_(masks)


def index_forms(
    dialect: str, categories: Sequence[str], tags: Sequence[str], *, strict: bool = True
) -> tuple[list[int], list[Any]]:
    """The ``category_bits`` and ``tag_set`` columns of records with these comma-joined categories and tags.

    Raises:
        InputError: ``strict`` and a category has no bit.
    """
    form = tag_set_postgres if dialect == "postgresql" else tag_set_sqlite
    cache: dict[str, Any] = {}
    tag_sets = []
    for text in tags:
        value = cache.get(text)
        if value is None:
            value = cache[text] = form(text)
        tag_sets.append(value)
    return [category_bits(text, strict=strict) for text in categories], tag_sets
