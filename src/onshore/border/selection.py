"""Which stored records an export request concerns, grouped into data classes.

A data class is the set of selected records sharing one classifying rule, one set of categories and one set
of tags (a position inside a sensitive zone carries ``important`` and ``sensitive_area`` on top of its
rule's categories, so it forms a class of its own). The gate decides per class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select

from onshore.border.requests import ExportRequest
from onshore.model import RECORD_COLUMNS
from onshore.storage.schema import records

# The stored record's columns the gate reads: its id, then RECORD_COLUMNS without origin and received_ms.
ROW_COLUMNS = ("id", *(c for c in RECORD_COLUMNS if c not in ("origin", "received_ms")))


@dataclass(frozen=True, slots=True)
class DataClass:
    """One class of the selected records: what the gate decides on."""

    rule_id: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    signals: tuple[str, ...]
    records: int
    people: int

    @property
    def key(self) -> str:
        return class_key(self.rule_id, ",".join(self.categories), ",".join(self.tags))

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.key,
            "rule": self.rule_id,
            "categories": list(self.categories),
            "tags": list(self.tags),
            "signals": list(self.signals),
            "records": self.records,
            "people": self.people,
        }


def class_key(rule_id: str, categories_csv: str, tags_csv: str) -> str:
    """``rule|categories|tags``: the stable name of a data class."""
    return f"{rule_id}|{categories_csv}|{tags_csv}"


def has_category(category: str) -> ColumnElement[bool]:
    """Records whose comma-joined categories contain ``category`` exactly (not as a substring)."""
    return (literal(",") + records.c.categories + literal(",")).like(f"%,{category},%")


class RecordSelection:
    """The SQL filter of one request over its region's ``records`` table."""

    def __init__(self, request: ExportRequest) -> None:
        self.request = request
        clauses: list[ColumnElement[bool]] = [
            records.c.ts_ms >= request.since_ms,
            records.c.ts_ms < request.until_ms,
        ]
        if request.signals:
            clauses.append(records.c.signal.in_(request.signals))
        if request.categories:
            clauses.append(or_(*[has_category(c.value) for c in request.categories]))
        if request.vehicles:
            clauses.append(records.c.vehicle_ref.in_(request.vehicles))
        self.where = and_(*clauses)

    def data_classes(self, conn: Connection) -> list[DataClass]:
        """The classes of the selected records, with their records and distinct people, ordered by key."""
        by_signal = conn.execute(
            select(records.c.rule_id, records.c.categories, records.c.tags, records.c.signal, func.count())
            .where(self.where)
            .group_by(records.c.rule_id, records.c.categories, records.c.tags, records.c.signal)
        ).all()
        people = {
            (rule, cats, tags): int(n)
            for rule, cats, tags, n in conn.execute(
                select(
                    records.c.rule_id,
                    records.c.categories,
                    records.c.tags,
                    func.count(func.distinct(records.c.subject_ref)),
                )
                .where(self.where)
                .group_by(records.c.rule_id, records.c.categories, records.c.tags)
            ).all()
        }
        grouped: dict[tuple[str, str, str], tuple[list[str], int]] = {}
        for rule, cats, tags, signal, n in by_signal:
            signals, count = grouped.get((rule, cats, tags), ([], 0))
            signals.append(signal)
            grouped[(rule, cats, tags)] = (signals, count + int(n))
        out = [
            DataClass(
                rule_id=rule,
                categories=tuple(cats.split(",")) if cats else (),
                tags=tuple(tags.split(",")) if tags else (),
                signals=tuple(sorted(signals)),
                records=count,
                people=people.get((rule, cats, tags), 0),
            )
            for (rule, cats, tags), (signals, count) in grouped.items()
        ]
        return sorted(out, key=lambda c: c.key)

    def people_of_kind(self, kind: str) -> ColumnElement[bool]:
        """Records that make their subject count as ``pi`` (non-sensitive personal) or ``sensitive`` people."""
        if kind == "sensitive":
            return has_category("sensitive_personal")
        if kind == "pi":
            return and_(has_category("personal"), ~has_category("sensitive_personal"))
        if kind == "any":
            return has_category("personal")
        raise ValueError(f"people kind {kind!r} is unknown; valid: pi, sensitive, any")

    def iter_rows(self, conn: Connection, *, chunk: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
        """The selected rows in id order, ``chunk`` at a time, as tuples in ``ROW_COLUMNS`` order."""
        columns = [records.c[name] for name in ROW_COLUMNS]
        after = 0
        while True:
            rows = conn.execute(
                select(*columns).where(self.where, records.c.id > after).order_by(records.c.id).limit(chunk)
            ).all()
            if not rows:
                return
            yield [tuple(r) for r in rows]
            after = rows[-1][0]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(records).where(self.where)).scalar() or 0)
