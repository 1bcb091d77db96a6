"""Distinct people provided abroad, per counting window, and what each basis has carried.

The thresholds count people, not records: a person is a ``subject_ref`` (the region's pseudonym of the
person a datum is about). Every release writes one ``border_provided`` row per person, kind and basis; a
count is ``COUNT(DISTINCT subject_ref)`` over the window, so splitting a transfer into small requests, or
sending the same people twice, changes nothing (SCC Measures 2023; guideline 2026: no splitting).

Counters (named by the pack's threshold rules):

- ``pi``: people whose personal information, sensitive included, was provided abroad;
- ``pi_non_sensitive``: people whose non-sensitive personal information was;
- ``sensitive_pi``: people whose sensitive personal information was;
- ``processor_pi``: people whose personal information the region holds at all (2022 Measures Art. 4(2)).

A request's own people are added when they are not already counted in the window ("would cross").
Opening balances are people provided abroad before onshore recorded transfers, declared by the officer per
calendar year and kind; they are added as if all distinct from everyone else (the safe side).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from onshore.border import dates
from onshore.border.selection import RecordSelection
from onshore.border.tables import (
    border_opening_balances,
    border_provided,
    border_transfer_bases,
    border_transfers,
)
from onshore.errors import InputError
from onshore.storage.predicates import RecordFilter
from onshore.storage.records import count_subjects
from onshore.storage.writes import bulk_insert

_PROVIDED_COLUMNS = ("region", "subject_ref", "kind", "provided_ms", "transfer_id", "basis_id")

# counter -> (kinds of border_provided rows it counts, kind of request records it adds)
COUNTER_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "pi": (("pi", "sensitive"), "any"),
    "pi_non_sensitive": (("pi",), "pi"),
    "sensitive_pi": (("sensitive",), "sensitive"),
}
BALANCE_KINDS = ("pi", "sensitive", "processor")


@dataclass(frozen=True, slots=True)
class PeopleCount:
    """One counter over one window: people already counted, and people this request adds."""

    counter: str
    window_start: dt.date | None
    already: int
    request: int

    @property
    def total(self) -> int:
        return self.already + self.request

    def to_dict(self) -> dict[str, object]:
        return {
            "counter": self.counter,
            "since": None if self.window_start is None else self.window_start.isoformat(),
            "already": self.already,
            "request": self.request,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class BasisUsage:
    """What a basis has carried so far, and the people of this request it has not carried yet."""

    basis_id: str
    people: int
    new_people: int
    records: int
    transfers: int


class BorderCounters:
    """The counters of one region, read and written on the caller's connection."""

    def __init__(self, region: str, tz: str) -> None:
        self.region = region
        self.tz = tz

    def people_counts(
        self,
        conn: Connection,
        needs: Iterable[tuple[str, dt.date | None]],
        selection: RecordSelection,
        at: dt.datetime,
    ) -> dict[tuple[str, dt.date | None], PeopleCount]:
        """Count each ``(counter, window start)`` as of ``at``, adding the request's people.

        Raises:
            InputError: an unknown counter name.
        """
        out: dict[tuple[str, dt.date | None], PeopleCount] = {}
        for counter, start in sorted(set(needs), key=lambda n: (n[0], n[1] or dt.date.min)):
            already = self.counted(conn, counter, start, at)
            if counter == "processor_pi":
                out[(counter, start)] = PeopleCount(counter, start, already, 0)
                continue
            counted = select(border_provided.c.subject_ref).where(*self._window(counter, start, at))
            new = count_subjects(conn, selection.people_of_kind(COUNTER_KINDS[counter][1]), excluding=counted)
            out[(counter, start)] = PeopleCount(counter, start, already, int(new or 0))
        return out

    def _window(self, counter: str, start: dt.date | None, at: dt.datetime) -> list[Any]:
        if counter not in COUNTER_KINDS:
            raise InputError(f"counter {counter!r} is unknown; valid: processor_pi, {', '.join(COUNTER_KINDS)}")
        window = [border_provided.c.region == self.region, border_provided.c.kind.in_(COUNTER_KINDS[counter][0])]
        window.append(border_provided.c.provided_ms <= int(at.timestamp() * 1000))
        if start is not None:
            window.append(border_provided.c.provided_ms >= dates.start_of_day_ms(start, self.tz))
        return window

    def counted(self, conn: Connection, counter: str, start: dt.date | None, at: dt.datetime) -> int:
        """The people ``counter`` has counted since ``start`` as of ``at``, opening balances included (no request's
        people: what the officer's dashboard shows against the thresholds).

        Raises:
            InputError: an unknown counter name.
        """
        year = dates.local_date(at, self.tz).year
        if counter == "processor_pi":
            held = count_subjects(conn, RecordFilter(with_categories=("personal",)))
            return int(held or 0) + self._balance(conn, ("processor",), None, year)
        window = self._window(counter, start, at)
        already = conn.execute(select(func.count(func.distinct(border_provided.c.subject_ref))).where(*window)).scalar()
        kinds = COUNTER_KINDS[counter][0]
        return int(already or 0) + self._balance(conn, kinds, start.year if start is not None else None, year)

    def _balance(self, conn: Connection, kinds: Sequence[str], from_year: int | None, to_year: int) -> int:
        clauses = [
            border_opening_balances.c.region == self.region,
            border_opening_balances.c.kind.in_(kinds),
            border_opening_balances.c.year <= to_year,
        ]
        if from_year is not None:
            clauses.append(border_opening_balances.c.year >= from_year)
        return int(conn.execute(select(func.sum(border_opening_balances.c.people)).where(*clauses)).scalar() or 0)

    def basis_usage(
        self, conn: Connection, bases: Iterable[tuple[str, bool]], selection: RecordSelection | None
    ) -> dict[str, BasisUsage]:
        """For each ``(basis id, count people)``: records carried and transfers made so far and, when asked
        (the basis has a people limit), the distinct people carried and the request's people it has not
        carried yet (otherwise both are 0: the scan is skipped; with no ``selection``, no request: 0 new)."""
        out: dict[str, BasisUsage] = {}
        for basis_id, count_people in bases:
            people: int | None = 0
            new: int | None = 0
            if count_people:
                people = conn.execute(
                    select(func.count(func.distinct(border_provided.c.subject_ref))).where(
                        border_provided.c.basis_id == basis_id
                    )
                ).scalar()
                carried = select(border_provided.c.subject_ref).where(border_provided.c.basis_id == basis_id)
                if selection is not None:
                    new = count_subjects(conn, selection.people_of_kind("any"), excluding=carried)
            row = conn.execute(
                select(func.sum(border_transfer_bases.c.records), func.count()).where(
                    border_transfer_bases.c.basis_id == basis_id
                )
            ).one()
            out[basis_id] = BasisUsage(basis_id, int(people or 0), int(new or 0), int(row[0] or 0), int(row[1]))
        return out

    def record_release(
        self, conn: Connection, transfer_id: str, at_ms: int, provided: Iterable[tuple[str, str, str | None]]
    ) -> int:
        """Count the people of a release: ``(subject_ref, kind, basis_id)`` with kind ``pi`` or ``sensitive``.

        Returns the number of rows written (one per distinct triple).
        """
        rows = sorted({(self.region, s, k, at_ms, transfer_id, b) for s, k, b in provided}, key=lambda r: r[1:3])
        if rows:
            # the driver's executemany: a release or an import can be a million rows
            bulk_insert(conn, border_provided, rows, columns=_PROVIDED_COLUMNS)
        return len(rows)

    def transfers_of(self, conn: Connection, subject_ref: str) -> list[dict[str, object]]:
        """The releases abroad that carried data of ``subject_ref``: when, where, to whom, what kind, on what basis."""
        query = (
            select(
                border_transfers.c.id,
                border_transfers.c.at_ms,
                border_transfers.c.destination,
                border_transfers.c.recipient,
                border_transfers.c.purpose,
                border_provided.c.kind,
                border_provided.c.basis_id,
            )
            .join(border_transfers, border_transfers.c.id == border_provided.c.transfer_id)
            .where(border_provided.c.region == self.region, border_provided.c.subject_ref == subject_ref)
            .order_by(border_transfers.c.at_ms, border_transfers.c.id)
        )
        return [
            {
                "transfer_id": transfer_id,
                "at": dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).isoformat(),
                "destination": destination,
                "recipient": recipient,
                "purpose": purpose,
                "kind": "sensitive personal information" if kind == "sensitive" else "personal information",
                "basis_id": basis_id,
            }
            for transfer_id, at_ms, destination, recipient, purpose, kind, basis_id in conn.execute(query)
        ]

    def set_opening_balance(self, conn: Connection, year: int, kind: str, people: int, now_ms: int) -> None:
        """Declare people provided abroad in ``year`` before onshore counted (replaces an earlier declaration).

        Raises:
            InputError: unknown kind or a negative count.
        """
        if kind not in BALANCE_KINDS:
            raise InputError(f"balance kind {kind!r} is unknown; valid: {', '.join(BALANCE_KINDS)}")
        if people < 0:
            raise InputError("an opening balance cannot be negative")
        conn.execute(
            border_opening_balances.delete().where(
                and_(
                    border_opening_balances.c.region == self.region,
                    border_opening_balances.c.year == year,
                    border_opening_balances.c.kind == kind,
                )
            )
        )
        conn.execute(
            border_opening_balances.insert().values(
                region=self.region, year=year, kind=kind, people=people, recorded_ms=now_ms
            )
        )
