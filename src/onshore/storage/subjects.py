"""Subjects, their bindings to vehicles over time, and their consents, in a region's record store."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update

from onshore.errors import ConflictError
from onshore.model import LifecycleEvent
from onshore.storage.content import CONTENT_EVENT_VERSION, delete_records
from onshore.storage.predicates import RecordFilter
from onshore.storage.records import select_records
from onshore.storage.schema import bindings, consents, subjects
from onshore.storage.sql import SQLRecordStore

# A consent in force at ``at_ms`` (a bound parameter): not withdrawn, granted, not expired (expired counts as
# withdrawn). Every reader of consents uses it.
_IN_FORCE = and_(
    consents.c.withdrawn_ms.is_(None),
    consents.c.granted_ms <= bindparam("at_ms"),
    or_(consents.c.expires_ms.is_(None), consents.c.expires_ms > bindparam("at_ms")),
)
# A vehicle's bindings, each with the consents in force at ``at_ms`` of its subject (none: one row of nulls); one
# statement built once, so SQLAlchemy compiles it once (it runs for every ingested batch).
_in_force = and_(consents.c.subject_ref == bindings.c.subject_ref, _IN_FORCE)
_VEHICLE_CONTEXT = (
    select(
        bindings.c.id,
        bindings.c.subject_ref,
        bindings.c.vehicle_ref,
        bindings.c.role,
        bindings.c.profile,
        bindings.c.from_ms,
        bindings.c.until_ms,
        consents.c.purpose,
        consents.c.level,
    )
    .select_from(bindings.outerjoin(consents, _in_force))
    .where(bindings.c.vehicle_ref == bindparam("vehicle_ref"))
)


def new_subject_ref() -> str:
    """A random subject id: nothing about the person can be derived from it."""
    return "sub_" + secrets.token_hex(12)


@dataclass(frozen=True)
class Binding:
    subject_ref: str
    vehicle_ref: str
    role: str
    profile: str | None
    from_ms: int
    until_ms: int | None


@dataclass(frozen=True)
class PurgeResult:
    records: int
    consents: int
    bindings: int
    ledger_index: int


class SubjectStore:
    """Shares the record store's engine and write lock; one region."""

    def __init__(self, store: SQLRecordStore) -> None:
        self.store = store

    def add_subject(self, ref: str, kind: str, token_sha256: str | None, now_ms: int) -> None:
        with self.store.transaction("add subject") as conn:
            if conn.execute(select(subjects.c.ref).where(subjects.c.ref == ref)).first() is None:
                conn.execute(subjects.insert().values(ref=ref, kind=kind, token_sha256=token_sha256, created_ms=now_ms))
            elif token_sha256 is not None:
                conn.execute(update(subjects).where(subjects.c.ref == ref).values(token_sha256=token_sha256))

    def subject(self, ref: str) -> dict[str, Any] | None:
        with self.store.read("read subject") as conn:
            row = conn.execute(select(subjects).where(subjects.c.ref == ref)).first()
        return None if row is None else dict(row._mapping)

    def subject_by_token(self, token_sha256: str) -> dict[str, Any] | None:
        with self.store.read("authenticate subject") as conn:
            row = conn.execute(select(subjects).where(subjects.c.token_sha256 == token_sha256)).first()
        return None if row is None else dict(row._mapping)

    def bind(self, subject_ref: str, vehicle_ref: str, role: str, profile: str | None, from_ms: int) -> None:
        with self.store.transaction("bind subject") as conn:
            if role == "owner":  # one owner at a time: the previous ownership ends now
                conn.execute(
                    update(bindings)
                    .where(
                        bindings.c.vehicle_ref == vehicle_ref, bindings.c.role == "owner", bindings.c.until_ms.is_(None)
                    )
                    .values(until_ms=from_ms)
                )
            conn.execute(
                bindings.insert().values(
                    subject_ref=subject_ref, vehicle_ref=vehicle_ref, role=role, profile=profile, from_ms=from_ms
                )
            )

    def bindings_of_vehicle(self, vehicle_ref: str) -> list[Binding]:
        with self.store.read("read bindings") as conn:
            rows = conn.execute(select(bindings).where(bindings.c.vehicle_ref == vehicle_ref)).all()
        return [Binding(r.subject_ref, r.vehicle_ref, r.role, r.profile, r.from_ms, r.until_ms) for r in rows]

    def bindings_of_subject(self, subject_ref: str) -> list[Binding]:
        with self.store.read("read bindings") as conn:
            rows = conn.execute(select(bindings).where(bindings.c.subject_ref == subject_ref)).all()
        return [Binding(r.subject_ref, r.vehicle_ref, r.role, r.profile, r.from_ms, r.until_ms) for r in rows]

    # -- consents ---------------------------------------------------------------------------------

    def grant_consent(
        self, subject_ref: str, purpose: str, level: str, now_ms: int, expires_ms: int | None, event: LifecycleEvent
    ) -> int:
        with self.store.transaction("grant consent") as conn:
            conn.execute(
                consents.insert().values(
                    subject_ref=subject_ref, purpose=purpose, level=level, granted_ms=now_ms, expires_ms=expires_ms
                )
            )
            return self.store.journal.append(conn, [event.to_bytes()])

    def withdraw_consent(self, subject_ref: str, purpose: str, now_ms: int, event: LifecycleEvent) -> int | None:
        """Withdraw; the ledger index, or None when no consent for ``purpose`` was in force."""
        with self.store.transaction("withdraw consent") as conn:
            changed = conn.execute(
                update(consents)
                .where(
                    consents.c.subject_ref == subject_ref,
                    consents.c.purpose == purpose,
                    consents.c.withdrawn_ms.is_(None),
                    (consents.c.expires_ms.is_(None)) | (consents.c.expires_ms > now_ms),
                )
                .values(withdrawn_ms=now_ms)
            ).rowcount
            if not changed:
                return None
            return self.store.journal.append(conn, [event.to_bytes()])

    def active_consents(self, subject_refs: Sequence[str], at_ms: int) -> dict[str, dict[str, str]]:
        """subject → purpose → strongest level in force at ``at_ms`` (expired consents count as withdrawn)."""
        if not subject_refs:
            return {}
        with self.store.read("read consents") as conn:
            return self._active_consents(conn, subject_refs, at_ms)

    def vehicle_context(self, vehicle_ref: str, at_ms: int) -> tuple[list[Binding], dict[str, dict[str, str]]]:
        """The vehicle's bindings and the consents of everyone bound to it, in one query (the ingest hot path).

        Read afresh for every batch (no cache): a consent withdrawn or a binding ended stops the next batch.
        """
        with self.store.read("read bindings and consents") as conn:
            rows = conn.execute(_VEHICLE_CONTEXT, {"vehicle_ref": vehicle_ref, "at_ms": at_ms}).all()
        found: dict[int, Binding] = {}
        result: dict[str, dict[str, str]] = {}
        for binding_id, subject_ref, ref, role, profile, from_ms, until_ms, purpose, level in rows:
            if binding_id not in found:
                found[binding_id] = Binding(subject_ref, ref, role, profile, from_ms, until_ms)
            held = result.setdefault(subject_ref, {})
            if purpose is not None and held.get(purpose) != "separate":
                held[purpose] = level
        return [found[k] for k in sorted(found)], result

    def consents_in_force(self, subject_ref: str, at_ms: int) -> list[dict[str, Any]]:
        """The subject's consents in force at ``at_ms``: purpose, level, granted_ms, expires_ms (None: until
        withdrawn), oldest first."""
        with self.store.read("read consents") as conn:
            rows = conn.execute(
                select(consents.c.purpose, consents.c.level, consents.c.granted_ms, consents.c.expires_ms)
                .where(consents.c.subject_ref == subject_ref, _IN_FORCE)
                .order_by(consents.c.granted_ms, consents.c.id),
                {"at_ms": at_ms},
            ).all()
        return [dict(r._mapping) for r in rows]

    @staticmethod
    def _active_consents(conn: Any, subject_refs: Sequence[str], at_ms: int) -> dict[str, dict[str, str]]:
        rows = conn.execute(
            select(consents.c.subject_ref, consents.c.purpose, consents.c.level).where(
                consents.c.subject_ref.in_(list(subject_refs)), _IN_FORCE
            ),
            {"at_ms": at_ms},
        ).all()
        result: dict[str, dict[str, str]] = {ref: {} for ref in subject_refs}
        for subject_ref, purpose, level in rows:
            if result[subject_ref].get(purpose) != "separate":
                result[subject_ref][purpose] = level
        return result

    def consent_history(self, subject_ref: str) -> list[dict[str, Any]]:
        with self.store.read("read consents") as conn:
            rows = conn.execute(select(consents).where(consents.c.subject_ref == subject_ref)).all()
        return [dict(r._mapping) for r in rows]

    # -- access and erasure -----------------------------------------------------------------------

    def records_of(self, subject_ref: str, *, after_id: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        """A page of the subject's records in id order (``after_id`` is the cursor), as mappings."""
        with self.store.read("read subject records") as conn:
            rows = select_records(conn, RecordFilter(subject=subject_ref, after_id=after_id), limit=limit)
        return [r._asdict() for r in rows]

    def purge(self, subject_ref: str, now_ms: int, events: Iterable[LifecycleEvent]) -> PurgeResult:
        """Delete the subject's rows and consents, end their bindings, mark them erased; one transaction.

        Raises:
            ConflictError: the subject was already erased.
        """
        with self.store.transaction("erase subject") as conn:
            row = conn.execute(select(subjects.c.erased_ms).where(subjects.c.ref == subject_ref)).first()
            if row is not None and row[0] is not None:
                raise ConflictError("this subject's data was already erased")
            n_consents = conn.execute(delete(consents).where(consents.c.subject_ref == subject_ref)).rowcount
            n_bindings = conn.execute(
                update(bindings)
                .where(bindings.c.subject_ref == subject_ref, bindings.c.until_ms.is_(None))
                .values(until_ms=now_ms)
            ).rowcount
            conn.execute(
                update(subjects).where(subjects.c.ref == subject_ref).values(erased_ms=now_ms, token_sha256=None)
            )
            entries = [e.to_bytes() for e in events]
            first = self.store.journal.append(conn, entries) if entries else None

            def make_event(n_records: int, digest: str | None) -> LifecycleEvent:
                return LifecycleEvent(
                    kind="delete",
                    region=self.store.region,
                    at_ms=now_ms,
                    actor_role="officer",
                    purpose="erasure",
                    counts={"records": n_records, "consents": n_consents, "bindings": n_bindings},
                    digest=digest,
                    version=CONTENT_EVENT_VERSION,
                )

            n_records, index = delete_records(conn, RecordFilter(subject=subject_ref), self.store.journal, make_event)
            if index is None:  # nothing stored: the delete event still records the consents and bindings ended
                index = self.store.journal.append(conn, [make_event(0, None).to_bytes()])
            index = first if first is not None else index
        return PurgeResult(records=n_records, consents=n_consents, bindings=n_bindings, ledger_index=index)

    def erased(self, subject_ref: str) -> bool:
        s = self.subject(subject_ref)
        return s is not None and s["erased_ms"] is not None
