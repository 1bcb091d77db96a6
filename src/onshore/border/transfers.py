"""The list of transfers abroad (releases, denials, imported earlier transfers) and the import of earlier ones.

Every release and denial of the gate is a ``border_transfers`` row with the decision per class and its
reasons (rule id, article, text); ``list_transfers`` reads them with filters, for ``GET /v1/border/exports``
and ``onshore export list``.

``import_history`` records transfers made before onshore was deployed, per person and date, so the counting
windows (since 1 January of the current or previous year) start right: one ``border_provided`` row per person,
kind and date, one ``border_transfers`` row (status ``imported``) per date, destination and recipient, and one
``transfers_imported`` ledger event (counts and the digest of the rows, never the people).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select

from onshore.border import dates
from onshore.border.counters import BorderCounters
from onshore.border.decisions import ExportDecision, failed_first, reason_line
from onshore.border.tables import border_transfers
from onshore.errors import InputError
from onshore.model import LifecycleEvent

MAX_IMPORT_ROWS = 1_000_000
MAX_LIST = 1000
STATUSES = ("released", "denied", "imported")
_SUBJECT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_RECIPIENT = re.compile(r"^[a-z0-9][a-z0-9_.\-]{1,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2,3}$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def decision_record(decision: ExportDecision) -> str:
    """The decision as stored with the transfer: the verdict and, per class, the decision and its reasons."""
    classes = [
        {
            "class": c.data_class.key,
            "categories": list(c.data_class.categories),
            "records": c.data_class.records,
            "people": c.data_class.people,
            "decision": c.decision,
            "basis": c.basis_id,
            "reasons": [{"rule": r.rule, "article": r.article, "text": r.text, "met": r.met} for r in c.reasons],
        }
        for c in decision.classes
    ]
    return orjson.dumps({"verdict": decision.verdict, "pack": decision.pack, "classes": classes}).decode()


@dataclass(frozen=True)
class TransferFilter:
    """Which transfers to list; empty fields match all. Dates are the legal calendar's, inclusive."""

    status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    destination: str | None = None
    recipient: str | None = None
    purpose: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InputError(f"status {self.status!r} is unknown; valid: {', '.join(STATUSES)}")
        if not 1 <= self.limit <= MAX_LIST:
            raise InputError(f"limit {self.limit} is outside 1..{MAX_LIST}")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise InputError(f"until {self.until} is before since {self.since}")


def list_transfers(conn: Connection, region: str, tz: str, where: TransferFilter) -> list[dict[str, Any]]:
    """The region's transfers matching ``where``, oldest first; a denial lists the reasons that failed
    (``denied_reasons``) and counts those its denied classes met (``met_in_denied``)."""
    t = border_transfers.c
    clauses = [t.region == region]
    if where.status is not None:
        clauses.append(t.status == where.status)
    if where.since is not None:
        clauses.append(t.at_ms >= dates.start_of_day_ms(where.since, tz))
    if where.until is not None:
        clauses.append(t.at_ms < dates.start_of_day_ms(where.until + dt.timedelta(days=1), tz))
    for column, value in (("destination", where.destination), ("recipient", where.recipient)):
        if value is not None:
            clauses.append(t[column] == value)
    if where.purpose is not None:
        clauses.append(t.purpose == where.purpose)
    rows = conn.execute(select(border_transfers).where(*clauses).order_by(t.at_ms, t.id).limit(where.limit)).all()
    out = []
    for row in rows:
        decision = orjson.loads(row.decision) if row.decision else None
        denied = [c for c in (decision or {}).get("classes", []) if c["decision"] == "deny"]
        failed, met = failed_first([r for c in denied for r in c["reasons"]])
        out.append(
            {
                "transfer_id": row.id,
                "region": row.region,
                "at": dt.datetime.fromtimestamp(row.at_ms / 1000, dt.UTC).isoformat(),
                "date": dates.local_date(dt.datetime.fromtimestamp(row.at_ms / 1000, dt.UTC), tz).isoformat(),
                "status": row.status,
                "verdict": None if decision is None else decision["verdict"],
                "destination": row.destination,
                "recipient": row.recipient,
                "purpose": row.purpose,
                "requester": row.requester,
                "records": row.records,
                "people": row.people,
                "ledger_index": row.ledger_index,
                "denied_reasons": list(dict.fromkeys(reason_line(r) for r in failed)),  # what failed, once each
                "met_in_denied": len(met),
                "classes": [] if decision is None else decision["classes"],
            }
        )
    return out


@dataclass(frozen=True)
class ImportedTransfer:
    """One person provided abroad on one date before onshore counted."""

    subject: str
    day: dt.date
    kind: str  # pi | sensitive
    destination: str
    recipient: str
    purpose: str = "imported"
    basis: str | None = None


def parse_import_rows(
    rows: Sequence[dict[str, Any]], today: dt.date, domestic: frozenset[str]
) -> list[ImportedTransfer]:
    """Validate every row (a CSV's dict rows) before anything is written.

    Raises:
        InputError: naming the first bad row (its number, counting the header as row 1) and field.
    """
    if not rows:
        raise InputError("the import holds no rows")
    if len(rows) > MAX_IMPORT_ROWS:
        raise InputError(f"the import holds {len(rows)} rows; at most {MAX_IMPORT_ROWS} at once")
    out = []
    for n, row in enumerate(rows, start=2):

        def field(
            name: str, pattern: re.Pattern[str], *, optional: bool = False, row: dict[str, Any] = row, n: int = n
        ) -> str | None:
            value = (row.get(name) or "").strip()
            if not value and optional:
                return None
            if not pattern.fullmatch(value):
                raise InputError(f"row {n}: {name} is missing or malformed")
            return value

        subject = field("subject", _SUBJECT)
        try:
            day = dt.date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            raise InputError(f"row {n}: date is not YYYY-MM-DD") from None
        if not dates.EARLIEST <= day <= today:
            raise InputError(f"row {n}: date {day} is not between {dates.EARLIEST} and today ({today})")
        kind = (row.get("kind") or "").strip()
        if kind not in ("pi", "sensitive"):
            raise InputError(f"row {n}: kind {kind[:20]!r} is unknown; valid: pi, sensitive")
        destination = field("destination", _COUNTRY)
        if destination in domestic:
            raise InputError(f"row {n}: destination {destination} is not abroad; only transfers abroad are counted")
        recipient = field("recipient", _RECIPIENT)
        purpose = field("purpose", _PURPOSE, optional=True) or "imported"
        basis = field("basis", _RECIPIENT, optional=True)
        assert subject and destination and recipient
        out.append(ImportedTransfer(subject, day, kind, destination, recipient, purpose, basis))
    return out


def import_history(
    conn: Connection, journal: Any, region: str, tz: str, rows: Sequence[ImportedTransfer], now_ms: int
) -> dict[str, Any]:
    """Write the validated rows (see the module docstring) in the caller's transaction; returns a summary."""
    counters = BorderCounters(region, tz)
    groups: dict[tuple[dt.date, str, str, str], list[ImportedTransfer]] = {}
    for row in rows:
        groups.setdefault((row.day, row.destination, row.recipient, row.purpose), []).append(row)
    index = journal.tree_size(conn)
    transfers = []
    for (day, destination, recipient, purpose), members in sorted(groups.items()):
        transfer_id = "xi-" + secrets.token_hex(10)
        at_ms = dates.start_of_day_ms(day, tz) + 12 * 3600 * 1000  # local noon: inside the date in any window
        counters.record_release(conn, transfer_id, at_ms, ((r.subject, r.kind, r.basis) for r in members))
        conn.execute(
            border_transfers.insert().values(
                id=transfer_id,
                region=region,
                at_ms=at_ms,
                status="imported",
                destination=destination,
                recipient=recipient,
                purpose=purpose,
                records=0,
                people=len({r.subject for r in members}),
                content_sha256=None,
                ledger_index=index,
                requester="officer",
                decision=None,
            )
        )
        transfers.append(transfer_id)
    canonical = sorted((r.subject, r.day.isoformat(), r.kind, r.destination, r.recipient, r.purpose) for r in rows)
    pi = {r.subject for r in rows if r.kind == "pi"}
    sensitive = {r.subject for r in rows if r.kind == "sensitive"}
    event = LifecycleEvent(
        kind="transfers_imported",
        region=region,
        at_ms=now_ms,
        actor_role="officer",
        counts={
            "rows": len(rows),
            "transfers": len(transfers),
            "people_pi": len(pi),
            "people_sensitive": len(sensitive),
            "first": dates.yyyymmdd(min(r.day for r in rows)) or 0,
            "last": dates.yyyymmdd(max(r.day for r in rows)) or 0,
        },
        digest=hashlib.sha256(orjson.dumps(canonical)).hexdigest(),
    )
    appended = journal.append(conn, [event.to_bytes()])
    return {
        "rows": len(rows),
        "transfers": transfers,
        "people_pi": len(pi),
        "people_sensitive": len(sensitive),
        "ledger_index": appended,
    }
