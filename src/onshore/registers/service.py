"""``RegisterService``: record, change, list and check the entries of the registers, each change a ledger event.

Every create and change is one transaction of the entry's region: the row (new version) and a
``<register>_change`` ledger event whose counts are the entry's facts (``entries.facts``) and whose digest
commits to the entry as recorded. Nothing is written when the input is refused (a precise 4xx).

Rights requests get their deadline from the region's rule pack (``erasure.deadline_working_days`` for an
erasure; other kinds have no deadline in the pack); ``handle`` carries an erasure out (keys destroyed, rows
purged, as ``onshore subject erase``) and records it handled on the day it finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, select, update

from onshore import clock
from onshore.border import dates
from onshore.border.freetext import check_free_text
from onshore.errors import InputError, NotFoundError, ValidationError
from onshore.model import LifecycleEvent
from onshore.registers.entries import (
    REGISTERS,
    SPECS,
    ProvisionSpec,
    RightsRequestSpec,
    _Entry,
    event_kind,
    facts,
    spec_dump,
)
from onshore.registers.tables import register_entries
from onshore.rights.requests import SubjectRequests, add_working_days
from onshore.rules.loader import RuleBook
from onshore.storage.region import Region

MAX_LIST = 1000


def entry_digest(register: str, entry_id: int, version: int, body: Mapping[str, Any]) -> str:
    """Hex SHA-256 of an entry version as recorded (what its ledger event's digest is)."""
    canonical = {"register": register, "id": entry_id, "version": version, "body": dict(body)}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class RegisterEntry:
    """One entry as stored, with the deadline the pack gives it (rights requests)."""

    register: str
    id: int
    region: str
    version: int
    body: dict[str, Any]
    deadline: dt.date | None
    ledger_index: int

    def to_dict(self) -> dict[str, Any]:
        out = {"register": self.register, "id": self.id, "region": self.region, "version": self.version}
        out.update(self.body)
        out["deadline"] = None if self.deadline is None else self.deadline.isoformat()
        if self.register == "rights_request":
            handled = self.body.get("handled_on")
            out["within_deadline"] = (
                None if self.deadline is None or handled is None else dt.date.fromisoformat(handled) <= self.deadline
            )
        out["ledger_index"] = self.ledger_index
        return out


def parse_entry(register: str, data: Any) -> _Entry:
    """Validate ``data`` as an entry of ``register``.

    Raises:
        NotFoundError: no such register. ValidationError (422): naming the first bad field.
    """
    spec_type = SPECS.get(register)
    if spec_type is None:
        raise NotFoundError(f"register {register!r} is unknown; valid: {', '.join(REGISTERS)}")
    if not isinstance(data, Mapping):
        raise ValidationError(f"a {register} entry must be a mapping of fields")
    try:
        return spec_type.model_validate(dict(data))
    except PydanticValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        first = details[0]
        raise ValidationError(f"{register} {first['field'] or '(entry)'}: {first['reason']}", details=details) from exc


class RegisterService:
    """The registers of every region of a runtime."""

    def __init__(self, rulebook: RuleBook, regions: Mapping[str, Region], requests: SubjectRequests) -> None:
        self.rulebook = rulebook
        self.regions = regions
        self.requests = requests

    def _region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise NotFoundError(f"region {name!r} is not configured; configured: {', '.join(self.regions)}") from None

    def today(self, region: Region) -> dt.date:
        return dates.local_date(clock.now(), self._timezone(region))

    def _timezone(self, region: Region) -> str:
        outbound = self.rulebook.for_jurisdiction(region.jurisdiction).pack.outbound
        return outbound.timezone if outbound is not None else "UTC"

    def deadline(self, region: Region, spec: _Entry) -> dt.date | None:
        """The pack's deadline for a rights request (an erasure: the erasure deadline in working days)."""
        if not isinstance(spec, RightsRequestSpec) or spec.kind != "erasure":
            return None
        erasure = self.rulebook.for_jurisdiction(region.jurisdiction).pack.erasure
        if erasure is None:
            return None
        start = dt.datetime(spec.received_on.year, spec.received_on.month, spec.received_on.day, tzinfo=dt.UTC)
        return add_working_days(start, erasure.deadline_working_days).date()

    def _check(self, region: Region, register: str, spec: _Entry) -> None:
        """Refuse what the law or the pack does not allow, before anything is written."""
        today = self.today(region)
        body = spec_dump(spec)
        for name, value in body.items():
            if name.endswith("_on") and value is not None and dt.date.fromisoformat(value) > today:
                raise ValidationError(f"{register} {name}: {value} is in the future (today is {today})")
        check_free_text(body, self.regions, what=f"{register} entry")
        if isinstance(spec, ProvisionSpec):
            pack = self.rulebook.for_jurisdiction(region.jurisdiction)
            if spec.purpose not in {p.id for p in pack.pack.purposes}:
                raise ValidationError(f"provision purpose: {spec.purpose!r} is not a purpose of pack {pack.pack.pack}")
            needed = pack.consent_required(spec.categories)
            if needed == "separate" and spec.basis == "consent_ordinary":
                source = pack.pack.consent.source
                raise ValidationError(
                    f"provision basis: categories {','.join(c.value for c in spec.categories)} need separate consent "
                    f"({source.instrument} {source.article}); consent_ordinary is not enough"
                )

    def _write(
        self, conn: Connection, region: Region, register: str, spec: _Entry, actor_role: str, entry_id: int | None
    ) -> RegisterEntry:
        now = clock.now_ms()
        body = spec_dump(spec)
        deadline = self.deadline(region, spec)
        index = region.store.journal.tree_size(conn)
        status = str(body.get("status") or ("closed" if body.get("closed_on") or body.get("ended_on") else "open"))
        day = str(body.get("received_on") or body.get("occurred_on") or body.get("started_on"))
        row: dict[str, Any] = {"day": day, "status": status, "body": orjson.dumps(body).decode()}
        row |= {"updated_ms": now, "ledger_index": index}
        t = register_entries.c
        if entry_id is None:
            version = 1
            insert = register_entries.insert().values(
                region=region.name, register=register, version=version, created_ms=now, **row
            )
            inserted = conn.execute(insert).inserted_primary_key
            assert inserted is not None
            entry_id = int(inserted[0])
        else:
            version = int(conn.execute(select(t.version).where(t.id == entry_id)).scalar_one()) + 1
            conn.execute(update(register_entries).where(t.id == entry_id).values(version=version, **row))
        event = LifecycleEvent(
            kind=event_kind(register),
            region=region.name,
            at_ms=now,
            actor_role=actor_role,
            purpose=spec.purpose if isinstance(spec, ProvisionSpec) else None,
            counts={"entry": int(entry_id), "version": version, **facts(register, spec, deadline)},
            digest=entry_digest(register, int(entry_id), version, body),
        )
        appended = region.store.journal.append(conn, [event.to_bytes()])
        assert appended == index, "the region write lock keeps the journal's size stable"
        return RegisterEntry(register, int(entry_id), region.name, version, body, deadline, index)

    def add(self, register: str, region: str, data: Any, *, actor_role: str) -> RegisterEntry:
        """Record a new entry.

        Raises:
            NotFoundError: unknown register or region. ValidationError (422): a bad field; nothing is written.
        """
        spec = parse_entry(register, data)
        reg = self._region(region)
        self._check(reg, register, spec)
        with reg.store.transaction(f"record {register}") as conn:
            return self._write(conn, reg, register, spec, actor_role, None)

    def change(self, register: str, entry_id: int, changes: Any, *, actor_role: str) -> RegisterEntry:
        """Change fields of an entry (the others stay); a new version and ledger event.

        Raises:
            NotFoundError: unknown register or entry. ValidationError (422): the changed entry is invalid.
            InputError: ``changes`` is not a mapping.
        """
        current = self.get(register, entry_id)
        if not isinstance(changes, Mapping) or not changes:
            raise InputError("changes must be a non-empty mapping of fields to new values")
        spec = parse_entry(register, {**current.body, **dict(changes)})
        reg = self._region(current.region)
        self._check(reg, register, spec)
        with reg.store.transaction(f"change {register}") as conn:
            return self._write(conn, reg, register, spec, actor_role, entry_id)

    def handle(
        self, entry_id: int, *, actor_role: str, handled_on: dt.date | None = None, note: str | None = None
    ) -> RegisterEntry:
        """Carry out a rights request and record it handled: an erasure runs (every region), others are marked.

        Raises:
            NotFoundError: unknown entry. ConflictError: already handled, or the subject is already erased.
            InputError: an erasure request without a subject.
        """
        current = self.get("rights_request", entry_id)
        if current.body["status"] in ("handled", "refused"):
            from onshore.errors import ConflictError

            raise ConflictError(f"rights request {entry_id} is already {current.body['status']}")
        changes: dict[str, Any] = {"status": "handled"}
        if note is not None:
            changes["note"] = note
        if current.body["kind"] == "erasure":
            subject = current.body.get("subject")
            if not subject:
                raise InputError(f"rights request {entry_id}: name the subject first (change it with subject=sub_…)")
            received = dt.date.fromisoformat(current.body["received_on"])
            requested = dt.datetime(received.year, received.month, received.day, tzinfo=dt.UTC)
            report = self.requests.erase(subject, actor_role=actor_role, requested_at=requested)
            handled_on = dt.datetime.fromisoformat(report.completed_at).date()
        changes["handled_on"] = (handled_on or self.today(self._region(current.region))).isoformat()
        return self.change("rights_request", entry_id, changes, actor_role=actor_role)

    def _row(self, conn: Connection, register: str, entry_id: int) -> Any:
        return conn.execute(
            select(register_entries).where(register_entries.c.id == entry_id, register_entries.c.register == register)
        ).first()

    def get(self, register: str, entry_id: int) -> RegisterEntry:
        """One entry, from whichever region holds it.

        Raises:
            NotFoundError: no such register or entry.
        """
        if register not in SPECS:
            raise NotFoundError(f"register {register!r} is unknown; valid: {', '.join(REGISTERS)}")
        for region in self.regions.values():
            with region.store.read(f"read {register}") as conn:
                row = self._row(conn, register, entry_id)
            if row is not None:
                return self._entry(region, row)
        raise NotFoundError(f"no {register} entry {entry_id}")

    def _entry(self, region: Region, row: Any) -> RegisterEntry:
        body = orjson.loads(row.body)
        spec = SPECS[row.register].model_validate(body) if row.register in SPECS else None
        deadline = self.deadline(region, spec) if spec is not None else None
        return RegisterEntry(row.register, int(row.id), region.name, int(row.version), body, deadline, row.ledger_index)

    def list_entries(
        self,
        register: str,
        *,
        region: str | None = None,
        year: int | None = None,
        status: str | None = None,
        limit: int = MAX_LIST,
    ) -> list[RegisterEntry]:
        """Entries of ``register`` (in ``region``, with their main date in ``year``, of ``status``), oldest first.

        Raises:
            NotFoundError: unknown register or region. InputError: a limit outside 1..1000.
        """
        if register not in SPECS and register != "processor_profile":
            raise NotFoundError(f"register {register!r} is unknown; valid: {', '.join(REGISTERS)}")
        if not 1 <= limit <= MAX_LIST:
            raise InputError(f"limit {limit} is outside 1..{MAX_LIST}")
        regions = [self._region(region)] if region else list(self.regions.values())
        out: list[RegisterEntry] = []
        t = register_entries.c
        for reg in regions:
            clauses = [t.region == reg.name, t.register == register]
            if year is not None:
                clauses += [t.day >= f"{year:04d}-01-01", t.day <= f"{year:04d}-12-31"]
            if status is not None:
                clauses.append(t.status == status)
            with reg.store.read(f"list {register}") as conn:
                rows = conn.execute(select(register_entries).where(*clauses).order_by(t.day, t.id).limit(limit)).all()
            out += [self._entry(reg, row) for row in rows]
        return out[:limit]

    def overdue(self, *, region: str | None = None) -> list[RegisterEntry]:
        """Rights requests not handled whose deadline has passed (the officer's queue)."""
        pending = [
            e
            for status in ("received", "in_progress")
            for e in self.list_entries("rights_request", region=region, status=status)
        ]
        return [e for e in pending if e.deadline is not None and e.deadline < self.today(self._region(e.region))]
