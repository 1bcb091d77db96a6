"""Which stored records an export request concerns, grouped into data classes.

A data class is the set of selected records sharing one classifying rule, one set of categories and one set
of tags (a position inside a sensitive zone carries ``important`` and ``sensitive_area`` on top of its
rule's categories, so it forms a class of its own). The gate decides per class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from onshore.border.requests import ExportRequest
from onshore.storage.predicates import RecordFilter
from onshore.storage.records import RecordRow, count_records, group_counts, iter_records


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


class RecordSelection:
    """The stored records one request concerns (its ``RecordFilter``), read through storage's queries."""

    def __init__(self, request: ExportRequest) -> None:
        self.request = request
        self.filter = RecordFilter(
            categories=tuple(c.value for c in request.categories),
            signals=tuple(request.signals),
            vehicles=tuple(request.vehicles),
            since_ms=request.since_ms,
            until_ms=request.until_ms,
        )

    def data_classes(self, conn: Connection) -> list[DataClass]:
        """The classes of the selected records, with their records and distinct people, ordered by key."""
        by_signal = group_counts(conn, self.filter, ("rule_id", "categories", "tags", "signal"))
        people = {
            (rule, cats, tags): int(n)
            for rule, cats, tags, n in group_counts(
                conn, self.filter, ("rule_id", "categories", "tags"), distinct_subjects=True
            )
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

    def people_of_kind(self, kind: str) -> RecordFilter:
        """The selected records that make their subject count as ``pi`` (non-sensitive personal), ``sensitive``
        or ``any`` (personal) people.

        Raises:
            ValueError: an unknown kind.
        """
        if kind == "sensitive":
            return dataclasses.replace(self.filter, with_categories=("sensitive_personal",))
        if kind == "pi":
            return dataclasses.replace(
                self.filter, with_categories=("personal",), without_categories=("sensitive_personal",)
            )
        if kind == "any":
            return dataclasses.replace(self.filter, with_categories=("personal",))
        raise ValueError(f"people kind {kind!r} is unknown; valid: pi, sensitive, any")

    def iter_rows(self, conn: Connection, *, chunk: int = 20_000) -> Iterator[list[RecordRow]]:
        """The selected records in id order, ``chunk`` at a time."""
        return iter_records(conn, self.filter, chunk=chunk)

    def count(self, conn: Connection) -> int:
        return count_records(conn, self.filter)
