"""The figures of the reports, computed from ledger events alone (so `onshore report verify` can recompute them).

``compute`` reads the events ``[0, size)`` of each region's log, as decoded JSON objects, and returns named
integers for one calendar year of the pack's legal calendar:

- lifecycle: ``collect.*`` (received, dropped for want of consent), ``store.records_stored``,
  ``frames.received``, ``delete.records_retention`` / ``delete.records_erasure``, ``consent.granted`` /
  ``consent.withdrawn`` — summed over the events dated in the year;
- outbound: ``outbound.*`` from ``provide_abroad`` events (a release is one ``(time, digest)``; records and
  people summed per release), ``transfer_denied`` events, ``transfers_imported`` rows; per basis
  ``outbound.basis.<id>.*``; the same sums since 1 January of the previous year, for thresholds counted over a
  ``previous_year`` window, as ``outbound.since_previous_year.*``;
- registers: for each entry its *latest* ``<register>_change`` event in the log decides (the entry's facts,
  ``registers.entries.facts``): requests received, incidents occurred, complaints received, provision active in
  the year; rights requests handled within or after their deadline, pending, pending past their deadline as of
  ``as_of``;
- risk (derived from the above): ``risk.incidents_open``, ``risk.complaints_open``;
- access copies: ``access.<region>.<index>.records``, the records an ``access_request`` event at that index of the
  region's log says the subject's copy held (whatever its year: an access copy names its own event).

No figure reads a store: a figure here is a function of the signed log prefix, the year and ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from onshore.border import dates

Event = Mapping[str, Any]

# Figure keys every annual report states (in this order); per-basis keys are added as found.
ANNUAL_KEYS = (
    "collect.received",
    "collect.dropped_no_consent",
    "store.records_stored",
    "frames.received",
    "consent.granted",
    "consent.withdrawn",
    "delete.records_retention",
    "delete.records_erasure",
    "provision.entries",
    "provision.people",
    "provision.records",
    "incidents.count",
    "incidents.closed",
    "incidents.people_affected",
    "incidents.reported",
    "complaints.count",
    "complaints.closed",
    "complaints.about_transfer",
    "rights.requests",
    "rights.erasure_requests",
    "rights.handled",
    "rights.handled_within_deadline",
    "rights.handled_late",
    "rights.pending",
    "rights.pending_overdue",
    "outbound.transfers_released",
    "outbound.records",
    "outbound.people_pi",
    "outbound.people_sensitive",
    "outbound.denials",
    "outbound.records_refused",
    "outbound.imported_rows",
)
SINCE_PREVIOUS_YEAR = "outbound.since_previous_year"
WINDOW_KEYS = ("transfers_released", "records", "people_pi", "people_sensitive")


def _year(event: Event, tz: str) -> int:
    return dates.local_date(dt.datetime.fromtimestamp(event["at_ms"] / 1000, dt.UTC), tz).year


def _in_year(value: int | None, year: int) -> bool:
    return value is not None and value // 10000 == year


def latest_entries(events: Iterable[Event], kind: str) -> dict[tuple[str, int], dict[str, int]]:
    """``(region, entry) -> counts`` of the last event of ``kind`` per entry (a later version replaces an earlier)."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    for event in events:
        if event.get("kind") == kind:
            counts = event.get("counts") or {}
            out[(str(event.get("region")), int(counts.get("entry", -1)))] = dict(counts)
    return out


def _lifecycle(events: list[Event], year: int, tz: str, fig: dict[str, int]) -> None:
    for e in events:
        kind = e.get("kind")
        if kind not in ("collect", "store", "delete", "consent_change") or _year(e, tz) != year:
            continue
        counts = e.get("counts") or {}
        if kind == "collect":
            fig["collect.received"] += counts.get("received", 0)
            fig["collect.dropped_no_consent"] += counts.get("dropped_no_consent", 0)
            fig["frames.received"] += counts.get("frames_received", 0)
        elif kind == "store":
            fig["store.records_stored"] += counts.get("stored", 0)
        elif kind == "delete":
            which = "erasure" if e.get("purpose") == "erasure" else "retention"
            fig[f"delete.records_{which}"] += counts.get("records", 0)
        else:
            fig["consent.granted"] += counts.get("granted", 0)
            fig["consent.withdrawn"] += counts.get("withdrawn", 0)


def _outbound(events: list[Event], year: int, tz: str, fig: dict[str, int]) -> None:
    releases: set[tuple[Any, ...]] = set()
    window: set[tuple[Any, ...]] = set()
    for e in events:
        kind = e.get("kind")
        counts = e.get("counts") or {}
        if kind == "transfers_imported":
            if counts.get("first", 0) // 10000 <= year <= counts.get("last", 0) // 10000:
                fig["outbound.imported_rows"] += counts.get("rows", 0)
            continue
        if kind not in ("provide_abroad", "transfer_denied"):
            continue
        event_year = _year(e, tz)
        if kind == "provide_abroad" and event_year in (year - 1, year):
            window.add((e.get("region"), e.get("at_ms"), e.get("digest")))
            for name in WINDOW_KEYS[1:]:
                fig[f"{SINCE_PREVIOUS_YEAR}.{name}"] += counts.get(name, 0)
        if event_year != year:
            continue
        if kind == "transfer_denied":
            fig["outbound.denials"] += 1
            fig["outbound.records_refused"] += counts.get("records", 0)
            continue
        releases.add((e.get("region"), e.get("at_ms"), e.get("digest")))
        basis = e.get("basis_id") or "none"
        for name, key in (("records", "records"), ("people_pi", "people_pi"), ("people_sensitive", "people_sensitive")):
            fig[f"outbound.{name}"] += counts.get(key, 0)
            fig[f"outbound.basis.{basis}.{name}"] += counts.get(key, 0)
        fig[f"outbound.basis.{basis}.releases"] += 1
    fig["outbound.transfers_released"] = len(releases)
    fig[f"{SINCE_PREVIOUS_YEAR}.transfers_released"] = len(window)


def _registers(events: list[Event], year: int, as_of: dt.date, fig: dict[str, int]) -> None:
    as_of_int = dates.yyyymmdd(as_of) or 0
    for c in latest_entries(events, "rights_request_change").values():
        if not _in_year(c.get("received"), year):
            continue
        fig["rights.requests"] += 1
        fig["rights.erasure_requests"] += c.get("kind_erasure", 0)
        handled, deadline = c.get("handled"), c.get("deadline")
        if handled is not None:
            fig["rights.handled"] += 1
            late = deadline is not None and handled > deadline
            fig["rights.handled_late" if late else "rights.handled_within_deadline"] += 1
        else:
            fig["rights.pending"] += 1
            fig["rights.pending_overdue"] += int(deadline is not None and deadline < as_of_int)
    for c in latest_entries(events, "incident_change").values():
        if _in_year(c.get("occurred"), year):
            fig["incidents.count"] += 1
            fig["incidents.closed"] += int("closed" in c)
            fig["incidents.people_affected"] += c.get("people_affected", 0)
            fig["incidents.reported"] += c.get("reported", 0)
    for c in latest_entries(events, "complaint_change").values():
        if _in_year(c.get("received"), year):
            fig["complaints.count"] += 1
            fig["complaints.closed"] += int("closed" in c)
            fig["complaints.about_transfer"] += c.get("about_transfer", 0)
    for c in latest_entries(events, "provision_change").values():
        started, ended = c.get("started", 0), c.get("ended")
        if started // 10000 <= year and (ended is None or ended // 10000 >= year):
            fig["provision.entries"] += 1
            fig["provision.people"] += c.get("people", 0)
            fig["provision.records"] += c.get("records", 0)


def _access(events_by_region: Mapping[str, Sequence[Event]], fig: dict[str, int]) -> None:
    for region, events in events_by_region.items():
        for index, e in enumerate(events):
            if e.get("kind") == "access_request":
                fig[f"access.{region}.{index}.records"] = (e.get("counts") or {}).get("records", 0)


def compute(events_by_region: Mapping[str, Sequence[Event]], year: int, tz: str, as_of: dt.date) -> dict[str, int]:
    """Every figure for ``year`` from the regions' event prefixes (see the module docstring)."""
    fig: dict[str, int] = defaultdict(int)
    for key in (*ANNUAL_KEYS, *(f"{SINCE_PREVIOUS_YEAR}.{name}" for name in WINDOW_KEYS)):
        fig[key] = 0
    events = [e for region in sorted(events_by_region) for e in events_by_region[region]]
    _lifecycle(events, year, tz, fig)
    _outbound(events, year, tz, fig)
    _registers(events, year, as_of, fig)
    fig["risk.incidents_open"] = fig["incidents.count"] - fig["incidents.closed"]
    fig["risk.complaints_open"] = fig["complaints.count"] - fig["complaints.closed"]
    _access(events_by_region, fig)
    return dict(fig)
