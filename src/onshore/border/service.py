"""``BorderService``: the one way data leaves a region. The API, the CLI and the benchmark call it.

- ``decide``: the dry run. Reads the records a request concerns, the counters and the bases, and returns the
  gate's decision per class. It writes nothing: no counting, no ledger event.
- ``run``: decides, exports the allowed classes through their transforms into a bundle, then in ONE
  transaction re-decides (refusing if anything changed meanwhile), counts the people released, records the
  transfer and appends its ledger events: one ``provide_abroad`` per basis used (counts and the bundle's
  content digest) and one ``transfer_denied`` for the classes refused; a request refused entirely leaves only
  a ``transfer_denied`` event (counts and the request's digest). Then it writes the manifest with every
  event's inclusion proof. Release time is the real clock: only ``decide`` takes another date.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from onshore import clock
from onshore.border import dates
from onshore.border.bases import BasisSpec, TransferBasis
from onshore.border.basis_registry import BasisRegistry
from onshore.border.bundles import BundleWriter, archive, content_digest, terms_digest, write_manifest
from onshore.border.counters import BorderCounters
from onshore.border.decisions import ExportDecision
from onshore.border.exporter import Progress, export_classes
from onshore.border.gate import BorderGate
from onshore.border.manifest import CheckpointAt, ledger_section, manifest_terms
from onshore.border.requests import ExportRequest
from onshore.border.selection import DataClass, RecordSelection
from onshore.border.tables import border_transfer_bases, border_transfers
from onshore.border.transfers import (
    TransferFilter,
    decision_record,
    import_history,
    list_transfers,
    parse_import_rows,
)
from onshore.deid.transforms import TRANSFORM_NAMES
from onshore.errors import ConflictError, InputError, NotFoundError
from onshore.model import LifecycleEvent
from onshore.rules.loader import RuleBook
from onshore.storage.blobs import FolderBlobStore
from onshore.storage.region import Region


@dataclass
class ExportResult:
    """What ``run`` did: the decision, and either the bundle or the denial."""

    transfer_id: str
    decision: ExportDecision
    folder: Path | None = None
    manifest: dict[str, Any] | None = None
    archive: Path | None = None
    ledger_indexes: list[int] = field(default_factory=list)

    @property
    def released(self) -> bool:
        return self.folder is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "released": self.released,
            "verdict": self.decision.verdict,
            "bundle": None if self.folder is None else str(self.folder),
            "archive": None if self.archive is None else str(self.archive),
            "ledger_indexes": self.ledger_indexes,
            "records": 0 if self.manifest is None else self.manifest["counts"]["records"],
            "decision": self.decision.to_dict(),
        }


def _signature(decision: ExportDecision) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(c.data_class.key, c.decision, c.basis_id, tuple(t.name for t in c.transforms)) for c in decision.classes]


class BorderService:
    """Bases, decisions and releases for every region of a runtime."""

    def __init__(
        self,
        rulebook: RuleBook,
        regions: Mapping[str, Region],
        *,
        base_dir: Path,
        checkpoint_at: CheckpointAt | None = None,
        processor_status: frozenset[str] = frozenset(),
    ) -> None:
        """``checkpoint_at``: signs the log at a tree size, for the checkpoint every bundle carries (the runtime
        passes the ledger's; without it bundles carry proofs but no signed checkpoint). ``processor_status``: the
        processor's declared statuses (e.g. ``ciio``), which the gate's rules may depend on."""
        self.rulebook = rulebook
        self.processor_status = processor_status
        self.regions = regions
        self.base_dir = base_dir
        self.checkpoint_at = checkpoint_at
        self.bases = BasisRegistry(rulebook, regions, TRANSFORM_NAMES)
        self._gates: dict[str, BorderGate] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise NotFoundError(f"region {name!r} is not configured; configured: {', '.join(self.regions)}") from None

    def gate(self, region: Region) -> BorderGate:
        """The gate of the pack in force for ``region`` (built once)."""
        gate = self._gates.get(region.jurisdiction)
        if gate is None:
            gate = self._gates[region.jurisdiction] = BorderGate(
                self.rulebook.for_jurisdiction(region.jurisdiction), self.processor_status
            )
        return gate

    def exports_dir(self, region: Region) -> Path:
        """Where the API writes bundles: ``exports/`` in the region's blob folder, or, when the region's blobs
        are in S3, ``exports/<region>`` beside the config (bundles are folders; they stay in-country)."""
        if isinstance(region.blobs, FolderBlobStore):
            return region.blobs.root / "exports"
        return self.base_dir / "exports" / region.name

    def transfers_of_subject(self, region: Region, subject_ref: str) -> list[dict[str, object]]:
        """The releases abroad from ``region`` that carried data of ``subject_ref`` (for access requests)."""
        with region.store.read("transfers of a subject") as conn:
            return BorderCounters(region.name, self.gate(region).timezone).transfers_of(conn, subject_ref)

    # -- bases ----------------------------------------------------------------------------------

    def add_basis(self, spec: BasisSpec, *, actor_role: str) -> TransferBasis:
        return self.bases.add(spec, actor_role=actor_role)

    def approve_basis(
        self, basis_id: str, *, approved_on: dt.date, actor_role: str, reference: str | None = None
    ) -> TransferBasis:
        return self.bases.approve(basis_id, approved_on=approved_on, actor_role=actor_role, reference=reference)

    def revoke_basis(self, basis_id: str, *, actor_role: str) -> TransferBasis:
        return self.bases.revoke(basis_id, actor_role=actor_role)

    def today(self, region: str | None = None, at: dt.datetime | None = None) -> dt.date:
        """The date in the legal calendar of ``region`` (of the first region when None)."""
        reg = self.region(region) if region else next(iter(self.regions.values()))
        return dates.local_date(at or clock.now(), self.gate(reg).timezone)

    # -- counters -------------------------------------------------------------------------------

    def set_opening_balance(self, region: str, year: int, kind: str, people: int) -> None:
        """Declare people provided abroad in ``year`` before onshore counted (kind pi, sensitive, processor)."""
        reg = self.region(region)
        with reg.store.transaction("set opening balance") as conn:
            BorderCounters(reg.name, self.gate(reg).timezone).set_opening_balance(
                conn, year, kind, people, clock.now_ms()
            )

    def import_provided(
        self, region: str, subject_refs: list[str], kind: str, at: dt.datetime, basis_id: str | None = None
    ) -> int:
        """Record people provided abroad earlier (e.g. by a previous system), so the counters include them."""
        if kind not in ("pi", "sensitive"):
            raise InputError(f"kind {kind!r} is unknown; valid: pi, sensitive")
        reg = self.region(region)
        with reg.store.transaction("import provided people") as conn:
            counters = BorderCounters(reg.name, self.gate(reg).timezone)
            at_ms = int(at.timestamp() * 1000)
            return counters.record_release(conn, "imported", at_ms, ((s, kind, basis_id) for s in subject_refs))

    def import_history(self, region: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Record transfers made before onshore, per person and date, with one ledger event (all or nothing).

        Raises:
            InputError: naming the first bad row; nothing is written.
        """
        reg = self.region(region)
        gate = self.gate(reg)
        parsed = parse_import_rows(rows, dates.local_date(clock.now(), gate.timezone), gate.domestic)
        with reg.store.transaction("import earlier transfers") as conn:
            return import_history(conn, reg.store.journal, reg.name, gate.timezone, parsed, clock.now_ms())

    def list_transfers(self, region: str, where: TransferFilter) -> list[dict[str, Any]]:
        """Releases, denials and imported transfers of ``region`` with their reasons (``border.transfers``)."""
        reg = self.region(region)
        with reg.store.read("list transfers") as conn:
            return list_transfers(conn, reg.name, self.gate(reg).timezone, where)

    # -- decisions ------------------------------------------------------------------------------

    def _evaluate(
        self,
        conn: Connection,
        region: Region,
        request: ExportRequest,
        at: dt.datetime,
        classes: list[DataClass] | None = None,
    ) -> ExportDecision:
        gate = self.gate(region)
        selection = RecordSelection(request)
        if classes is None:
            classes = selection.data_classes(conn)
        if not gate.is_outbound(request) or not classes:
            return gate.decide(request, classes, {}, [], {}, at)
        counters = BorderCounters(region.name, gate.timezone)
        counts = counters.people_counts(conn, gate.counting_needs(at), selection, at)
        bases = self.bases.in_region(conn, region)
        day = dates.local_date(at, gate.timezone)
        live = [
            (b.id, b.spec.scope.max_people is not None or b.spec.derogation is not None)
            for b in bases
            if b.status_on(day) == "approved" and request.basis in (None, b.id)
        ]
        usage = counters.basis_usage(conn, live, selection)
        return gate.decide(request, classes, counts, bases, usage, at)

    def decide(self, request: ExportRequest, *, at: dt.datetime | None = None) -> ExportDecision:
        """The dry run: the decision per data class, without releasing or counting anything."""
        region = self.region(request.region)
        at = at or clock.now()
        with region.store.read("border decide") as conn:
            return self._evaluate(conn, region, request, at)

    # -- releases -------------------------------------------------------------------------------

    def run(
        self,
        request: ExportRequest,
        out: Path | None,
        *,
        actor_role: str,
        at: dt.datetime | None = None,
        make_archive: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        """Decide, export what is allowed into a bundle at ``out``, count and log it.

        ``out`` None: the bundle goes to ``exports_dir(region)/<transfer id>`` (what the API serves).

        ``at`` exists for tests and benchmarks; the CLI and the API always release at the real time.

        Raises:
            InputError: no stored record matches the request.
            ConflictError: ``out`` is not empty, or the counts or bases changed during the export (run again).
        """
        region = self.region(request.region)
        at = at or clock.now()
        transfer_id = "xf-" + secrets.token_hex(10)
        with region.store.read("border decide") as conn:
            decision = self._evaluate(conn, region, request, at)
        if decision.verdict == "empty":
            raise InputError("no stored record matches the request: nothing to release")
        allowed = {c.data_class.key: c for c in decision.classes if c.decision != "deny"}
        if not allowed:
            logged = self._commit(region, request, decision, transfer_id, at, actor_role, None)
            return ExportResult(transfer_id, decision, ledger_indexes=[i for i, _ in logged])
        out = out if out is not None else self.exports_dir(region) / transfer_id
        writer = BundleWriter(out, request.format)
        try:
            pack = self.rulebook.for_jurisdiction(region.jurisdiction)
            output = export_classes(region, pack, request, allowed, writer, progress)
            files = writer.close(output.flows)
            bundle = {"files": files, "stats": output.stats, "provided": output.provided, "flows": len(output.flows)}
            used = sorted({c.basis_id for c in decision.classes if c.basis_id and c.decision != "deny"})
            bases = [self.bases.get(b).to_dict(decision.day) for b in used]
            terms = manifest_terms(region, request, decision, transfer_id, at, bundle, bases)
            bundle["terms_sha256"] = terms_digest(terms)  # what every provide_abroad event commits to
            logged = self._commit(region, request, decision, transfer_id, at, actor_role, bundle)
        except BaseException:
            writer.abort()
            raise
        manifest = {**terms, "ledger": ledger_section(region, logged, self.checkpoint_at)}
        write_manifest(out, manifest)
        return ExportResult(
            transfer_id,
            decision,
            folder=out,
            manifest=manifest,
            archive=archive(out) if make_archive else None,
            ledger_indexes=[i for i, _ in logged],
        )

    def _commit(
        self,
        region: Region,
        request: ExportRequest,
        decision: ExportDecision,
        transfer_id: str,
        at: dt.datetime,
        actor_role: str,
        bundle: dict[str, Any] | None,
    ) -> list[tuple[int, LifecycleEvent]]:
        """Re-decide, count the people released, record the transfer and append its ledger events, atomically."""
        at_ms = int(at.timestamp() * 1000)
        gate = self.gate(region)
        denied = [c for c in decision.classes if c.decision == "deny"]
        events: list[LifecycleEvent] = []
        # The store's transaction holds the region's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory
        # lock), so a concurrent release of the region, from any process, waits here and then sees these people.
        with region.store.transaction("record transfer") as conn:
            # the same records, fresh counters and bases: a concurrent release or a revocation is caught here
            again = self._evaluate(conn, region, request, at, [c.data_class for c in decision.classes])
            if _signature(again) != _signature(decision):
                raise ConflictError("the counts or bases changed while the export ran; nothing was released, run again")
            records_out = people_out = 0
            if bundle is not None:
                counters = BorderCounters(region.name, gate.timezone)
                for triples in bundle["provided"].values():
                    counters.record_release(conn, transfer_id, at_ms, triples)
                by_basis = _groups_by_basis(decision, bundle)
                digest = bundle["terms_sha256"]
                for basis_id, group in sorted(by_basis.items(), key=lambda kv: kv[0] or ""):
                    people = len(group["pi"] | group["sensitive"])
                    records_out += group["records"]
                    people_out += people
                    if basis_id is not None:
                        conn.execute(
                            border_transfer_bases.insert().values(
                                transfer_id=transfer_id, basis_id=basis_id, records=group["records"], people=people
                            )
                        )
                    counts = {
                        "records": group["records"],
                        "classes": group["classes"],
                        "people_pi": len(group["pi"]),
                        "people_sensitive": len(group["sensitive"]),
                        "files": len(bundle["files"]),
                    }
                    events.append(
                        self._event("provide_abroad", region, request, at_ms, actor_role, counts, digest, basis_id)
                    )
            if denied:
                counts = {
                    "classes": len(denied),
                    "records": sum(c.data_class.records for c in denied),
                    "people_at_least": max((c.data_class.people for c in denied), default=0),
                }
                events.append(
                    self._event("transfer_denied", region, request, at_ms, actor_role, counts, request.digest(), None)
                )
            first = region.store.journal.append(conn, [e.to_bytes() for e in events])
            conn.execute(
                border_transfers.insert().values(
                    id=transfer_id,
                    region=region.name,
                    at_ms=at_ms,
                    status="released" if bundle is not None else "denied",
                    destination=request.destination,
                    recipient=request.recipient,
                    purpose=request.purpose,
                    records=records_out,
                    people=people_out,
                    content_sha256=None if bundle is None else content_digest(bundle["files"]),
                    ledger_index=first,
                    requester=request.requester,
                    decision=decision_record(decision),
                )
            )
        return list(zip(range(first, first + len(events)), events, strict=True))

    @staticmethod
    def _event(
        kind: str,
        region: Region,
        request: ExportRequest,
        at_ms: int,
        actor_role: str,
        counts: dict[str, int],
        digest: str,
        basis_id: str | None,
    ) -> LifecycleEvent:
        return LifecycleEvent(
            kind=kind,
            region=region.name,
            at_ms=at_ms,
            actor_role=actor_role,
            purpose=request.purpose,
            counts=counts,
            digest=digest,
            basis_id=basis_id,
        )


def _groups_by_basis(decision: ExportDecision, bundle: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """Released records, classes and distinct people per basis (None: classes that needed no basis)."""
    basis_of = {c.data_class.key: c.basis_id for c in decision.classes}
    groups: dict[str | None, dict[str, Any]] = {}
    for key, stats in bundle["stats"].items():
        group = groups.setdefault(basis_of[key], {"records": 0, "classes": 0, "pi": set(), "sensitive": set()})
        group["records"] += stats["records_released"]
        group["classes"] += 1
        for subject, kind, _ in bundle["provided"].get(key, ()):
            group[kind].add(subject)
    return groups
