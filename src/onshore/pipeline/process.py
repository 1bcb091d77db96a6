"""Process: an admitted batch through classify → minimise → store → ledger, for signal records and camera frames.

This is the far side of the ingest seam: a `Processor` takes the typed batches of `onshore.ingest.batch`, in the
same process (`onshore.ingest.bus.InProcessBus`) or off a message queue, and answers what today's API answers.
Both kinds take the same stages: `classify` (frames by the pack's ``frames:`` section), the consent gate and
row building of `minimize`, `store`, and the collect and store events. A frame adds the work only a frame has,
detection, anonymisation and the blob writes, which the vision package does behind `FrameStages`. In order:

1. the camera rule, purpose and zone are classified; a resend of a stored frame is answered as a duplicate;
2. a frame taken inside a sensitive zone is dropped when the pack says so (counted and logged, not stored);
3. a cabin frame's categories are known before detection, so its consent is decided first: no detector pass
   on a frame that will not be collected;
4. faces and plates are found and hidden; an external frame shot in hard conditions (motion blur, night
   noise) is dropped where the pack says ``hard_conditions: drop``;
5. the frame becomes a one-record batch through `minimize` (the consent gate; Art. 8 exempt rules pass it);
6. the anonymised frame (and, where the pack keeps raw frames, the sealed raw frame) is written to the
   region's blob stores; then the record row and the events are committed in one transaction.

A crash between 6's writes and its commit leaves an unreferenced blob and no acknowledgement; the vehicle
resends, the same key is rewritten with the same bytes, and the frame sweep removes blobs no record refers to.

Off a message queue a batch may come twice (a worker killed between its commit and its acknowledgement):
`Processor.process_once` commits a batch at most once by its ``batch_id`` and answers a redelivery with the answer
stored by the first commit (`onshore.storage.processed`): no second collect or store event, no counter twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from onshore import clock
from onshore.errors import AlreadyProcessedError, ConfigError, ResidencyError
from onshore.ingest.batch import Batch, FrameBatch, RecordBatch
from onshore.metrics import Metrics
from onshore.model import FrameResult, IngestResult, LifecycleEvent, StoredRows, Vehicle
from onshore.pipeline.classify import FrameSource, classify, classify_frame, classify_frame_source
from onshore.pipeline.minimize import CONSENT_LEVELS, consent_allows, minimize
from onshore.pipeline.store import RegionRouter, encrypt_personal_values, store
from onshore.rights.bindings import SubjectResolver
from onshore.rules.loader import RuleBook
from onshore.rules.schema import FramePolicy, Placement
from onshore.storage.processed import BatchClaim, claim, record_processed
from onshore.storage.records import find_record
from onshore.storage.region import Region
from onshore.storage.schema import frame_drops
from onshore.storage.sql import BatchCommit, CommitResult
from onshore.storage.writes import upsert_increment

if TYPE_CHECKING:
    from onshore.vision.frames import AnonymizedFrame

R = TypeVar("R")

# An exempt camera rule (Art. 8) needs no consent: the gate sees the highest level as given.
_EXEMPT = max(CONSENT_LEVELS, key=CONSENT_LEVELS.__getitem__)


class FrameStages(Protocol):
    """The frame work that is not law: detection and anonymisation, and the blob writes (`onshore.vision`)."""

    def anonymise(self, frame: FrameBatch, policy: FramePolicy, *, stop_on_hard_conditions: bool) -> AnonymizedFrame:
        """Find and hide faces and plates in ``frame.image``; with ``stop_on_hard_conditions``, an image shot in
        hard conditions is returned unprocessed, its ``conditions`` set."""
        ...

    def keep(self, region: Region, frame: FrameBatch, anonymised: AnonymizedFrame, *, raw_subject: str | None) -> bool:
        """Write the anonymised frame to ``region``'s blob store and, with ``raw_subject``, the raw frame sealed
        under that subject's key to its restricted store. Returns whether a raw frame was kept."""
        ...


def _events(region: str, at_ms: int, counts: dict[str, int], purpose: str | None = None) -> list[LifecycleEvent]:
    """The collect event (with what was received, dropped and kept) and the store event of one batch."""
    return [
        LifecycleEvent(
            kind="collect", region=region, at_ms=at_ms, actor_role="vehicle", purpose=purpose, counts=counts
        ),
        LifecycleEvent(kind="store", region=region, at_ms=at_ms, actor_role="vehicle", purpose=purpose),
    ]


@dataclasses.dataclass(frozen=True)
class _Ready:
    """A record batch classified and minimised: what is to be committed, and its answer from the commit."""

    region: Region
    stored: StoredRows
    events: list[LifecycleEvent]
    answer: Callable[[CommitResult], IngestResult]
    claim: BatchClaim[CommitResult] | None


class Processor:
    """Classifies, minimises and stores admitted batches in the region of their origin.

    Args:
        frames: the frame stages; without them a frame batch is refused (a signal-only worker).
        metrics: the process's metrics (records in and out, drops, processing and commit times); a fresh set if
            not given.
    """

    def __init__(
        self,
        rulebook: RuleBook,
        router: RegionRouter,
        *,
        frames: FrameStages | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.rulebook = rulebook
        self.router = router
        self.frames = frames
        self.metrics = metrics or Metrics()
        # Personal values are encrypted under their subject's key; only benchmarks switch this off.
        self.encrypt = True

    def process(self, batch: Batch) -> IngestResult | FrameResult:
        """Process either kind of batch (see `process_records` and `process_frame`)."""
        if isinstance(batch, RecordBatch):
            with self.metrics.in_flight("records"):
                return self.process_records(batch)
        with self.metrics.in_flight("frame"):
            result = self.process_frame(batch)
        self.metrics.frame(result)
        return result

    def process_once(self, batch: Batch) -> dict[str, Any]:
        """Process a batch taken off a message queue at most once, by its ``batch_id``.

        Returns:
            the batch's answer, as embedded mode answers it (``to_dict()``): from this processing, or, for a batch
            committed before (a redelivery), the answer stored with that commit, with nothing processed again.

        Raises:
            what `process` raises; nothing was stored.
        """
        prior = self.outcome_of(batch.vehicle, batch.batch_id)
        if prior is not None:
            return prior
        try:
            if isinstance(batch, RecordBatch):
                with self.metrics.in_flight("records"):
                    return self.process_records(batch, once=True).to_dict()
            with self.metrics.in_flight("frame"):
                frame = self.process_frame(batch, once=True)
            self.metrics.frame(frame)
            return frame.to_dict()
        except AlreadyProcessedError as exc:  # another delivery of it committed in the meantime
            return orjson.loads(exc.outcome)  # type: ignore[no-any-return]

    def outcome_of(self, vehicle: Vehicle, batch_id: str) -> dict[str, Any] | None:
        """The stored answer of batch ``batch_id`` of ``vehicle`` when `process_once` committed it, else None.

        Raises:
            ResidencyError: no region may hold data of the vehicle's market.
            StorageError: the region's record store cannot be read.
        """
        outcome = self.router.region_for(vehicle.market).store.processed_outcome(batch_id)
        return None if outcome is None else orjson.loads(outcome)  # type: ignore[no-any-return]

    def process_records(self, batch: RecordBatch, *, once: bool = False) -> IngestResult:
        """Classify, minimise and store a batch of signal records. All-or-nothing.

        Args:
            once: commit the batch at most once by its ``batch_id`` (see `process_once`).

        Raises:
            ValidationError: a value does not have its signal's shape, or a purpose is not allowed; nothing stored.
            ResidencyError: no region may hold data of the vehicle's market.
            AlreadyProcessedError: with ``once``, the batch was committed before; nothing was stored.
        """
        ready = self._prepare_records(batch, once=once)
        started = time.perf_counter()
        _region, result = store(ready.stored, ready.events, self.router, encrypt=self.encrypt, once=ready.claim)
        ingested = ready.answer(result)
        self.metrics.records(ingested, time.perf_counter() - started)
        return ingested

    def process_records_once(self, batches: Sequence[RecordBatch]) -> list[dict[str, Any] | Exception]:
        """`process_once` for several record batches, committed together: one transaction per region.

        Each batch gets what `process_once` would answer it, in order; the rows, events and counters are those of
        one-by-one processing (`SQLRecordStore.commit_batches`), and its metrics too (the group's commit time
        shared among its batches). A batch answered before is not processed again; a batch whose processing
        raises gets that exception as its answer and is left out of the group, which it does not affect.

        Raises:
            what `SQLRecordStore.commit_batches` raises (the database failed): no answer for any of them.
        """
        answers: list[dict[str, Any] | Exception | None] = [None] * len(batches)
        self._answer_committed(batches, answers)
        groups: dict[str, list[tuple[int, _Ready, AbstractContextManager[None], float]]] = {}
        flights: list[AbstractContextManager[None]] = []  # entered, not exited yet
        flight: AbstractContextManager[None]
        try:
            for i, batch in enumerate(batches):
                if answers[i] is not None:
                    continue
                flight = self.metrics.in_flight("records")
                flight.__enter__()
                flights.append(flight)
                try:
                    ready = self._prepare_records(batch, once=True)
                    started = time.perf_counter()
                    if self.encrypt:
                        encrypt_personal_values(ready.region, ready.stored)
                except Exception as exc:  # noqa: BLE001 - this batch's own answer; the others go on
                    flights.remove(flight)
                    flight.__exit__(type(exc), exc, exc.__traceback__)
                    answers[i] = exc
                    continue
                encrypt_s = time.perf_counter() - started
                groups.setdefault(ready.region.name, []).append((i, ready, flight, encrypt_s))
            for group in groups.values():
                started = time.perf_counter()
                results = group[0][1].region.store.commit_batches(
                    [BatchCommit(ready.stored, ready.events, ready.claim) for _, ready, _, _ in group]
                )
                share = (time.perf_counter() - started) / len(group)
                for (i, ready, flight, encrypt_s), result in zip(group, results, strict=True):
                    flights.remove(flight)
                    if isinstance(result, Exception):
                        flight.__exit__(type(result), result, result.__traceback__)
                        answers[i] = (
                            orjson.loads(result.outcome) if isinstance(result, AlreadyProcessedError) else result
                        )
                        continue
                    ingested = ready.answer(result)
                    self.metrics.records(ingested, encrypt_s + share)
                    flight.__exit__(None, None, None)
                    answers[i] = ingested.to_dict()
        except BaseException as exc:
            for flight in flights:
                flight.__exit__(type(exc), exc, exc.__traceback__)
            raise
        done = [a for a in answers if a is not None]
        assert len(done) == len(batches), "a batch was left unanswered"
        return done

    def _answer_committed(
        self, batches: Sequence[RecordBatch], answers: list[dict[str, Any] | Exception | None]
    ) -> None:
        """Answer the batches committed before from their stored answers (one read per region)."""
        by_region: dict[str, tuple[Region, list[int]]] = {}
        for i, batch in enumerate(batches):
            try:
                region = self.router.region_for(batch.vehicle.market)
            except ResidencyError as exc:
                answers[i] = exc
                continue
            by_region.setdefault(region.name, (region, []))[1].append(i)
        for region, indexes in by_region.values():
            stored = region.store.processed_outcomes([batches[i].batch_id for i in indexes])
            for i in indexes:
                outcome = stored.get(batches[i].batch_id)
                if outcome is not None:
                    answers[i] = orjson.loads(outcome)

    def _prepare_records(self, batch: RecordBatch, *, once: bool) -> _Ready:
        """Classify and minimise a batch of signal records: what is to be stored, with its events and answer."""
        now_ms = batch.received_ms
        pack = self.rulebook.for_jurisdiction(batch.vehicle.market)
        region = self.router.region_for(batch.vehicle.market)
        classified = classify(batch.signal_batch(), pack)
        bindings, consents = region.subjects.vehicle_context(batch.vehicle.ref, now_ms)
        subjects = SubjectResolver(bindings, fallback=batch.vehicle.ref).resolve(batch.ts_ms, batch.profiles)
        minimised = minimize(classified, pack, subjects, consents)
        counts = {
            "received": batch.received,
            "admitted": len(batch),
            "duplicate_in_batch": batch.duplicates_in_batch,
            "dropped_no_consent": minimised.dropped_no_consent,
            "zone_hits": minimised.zone_hits,
            "unclassified_signals": len(minimised.unclassified_signals),
        }
        region_name = region.name

        def answer(result: CommitResult) -> IngestResult:
            return IngestResult(
                region=region_name,
                received=batch.received,
                accepted=result.accepted,
                duplicate=batch.duplicates_in_batch + result.duplicate,
                dropped_no_consent=minimised.dropped_no_consent,
                by_category=result.by_category,
                zone_hits=minimised.zone_hits,
                unclassified_signals=minimised.unclassified_signals,
                ledger_index=result.ledger_index,
            )

        claimed: BatchClaim[CommitResult] | None = _claim(batch, lambda r: answer(r).to_dict()) if once else None
        return _Ready(region, minimised, _events(region_name, now_ms, counts), answer, claimed)

    def process_frame(self, frame: FrameBatch, *, once: bool = False) -> FrameResult:
        """Classify, anonymise and store one camera frame (the steps of this module's docstring).

        Args:
            once: commit the frame at most once by its ``batch_id`` (see `process_once`).

        Raises:
            ValidationError: the pack has no frame rules, no camera rule matches, or the purpose is not allowed.
            ResidencyError: no region may hold data of the vehicle's market.
            ConfigError: this processor was built without frame stages.
            AlreadyProcessedError: with ``once``, the frame was committed before; nothing was stored.
        """
        if self.frames is None:
            raise ConfigError("this onshore process has no frame stages (detection, blob writes); it takes no frames")
        now_ms = frame.received_ms
        pack = self.rulebook.for_jurisdiction(frame.vehicle.market)
        region = self.router.region_for(frame.vehicle.market)
        source = classify_frame_source(pack, frame.meta)
        result = FrameResult(region=region.name, msg_id=frame.meta.msg_id, stored=False, rule_id=source.rule.id)
        if _already_stored(region, frame.vehicle.ref, frame.meta.msg_id):
            result.duplicate = True
            return result
        claimed: BatchClaim[FrameResult] | None = _claim(frame, FrameResult.to_dict) if once else None
        if source.zone is not None and source.policy.in_sensitive_zone == "drop":
            return _dropped(region, result, source, now_ms, "sensitive_zone", claimed)
        bindings, consents = region.subjects.vehicle_context(frame.vehicle.ref, now_ms)
        subject = SubjectResolver(bindings, fallback=frame.vehicle.ref).resolve([frame.meta.ts_ms], [None])[0]
        if source.rule.consent_exempt:
            consents = {subject: {source.purpose: _EXEMPT}}
        have = consents.get(subject, {}).get(source.purpose)
        if source.rule.placement is Placement.CABIN and not consent_allows(pack, source.labels(found=True)[0], have):
            return _dropped(region, result, source, now_ms, "no_consent", claimed)
        # The detection floor is a criterion for out-of-vehicle images; cabin frames are not dropped for it.
        drop_hard = source.policy.hard_conditions == "drop" and source.rule.placement is Placement.EXTERNAL
        anonymised = self.frames.anonymise(frame, source.policy, stop_on_hard_conditions=drop_hard)
        result.conditions = list(anonymised.conditions)
        if anonymised.conditions and drop_hard:
            return _dropped(region, result, source, now_ms, "hard_conditions", claimed)
        classified = classify_frame(frame, source, anonymised)
        minimised = minimize(classified, pack, [subject], consents)
        if not len(minimised.records):
            return _dropped(region, result, source, now_ms, "no_consent", claimed)
        result.categories = list(classified.categories[0])
        result.faces, result.plates = anonymised.faces, anonymised.plates
        keep_raw = source.policy.raw.keep
        result.raw_kept = self.frames.keep(region, frame, anonymised, raw_subject=subject if keep_raw else None)
        counts = {
            "frames_received": 1,
            "faces": anonymised.faces,
            "plates": anonymised.plates,
            "raw_kept": int(result.raw_kept),
            "zone_hits": minimised.zone_hits,
        }
        events = _events(region.name, now_ms, counts, source.purpose)

        def answer(committed: CommitResult) -> FrameResult:
            return dataclasses.replace(
                result,
                stored=committed.accepted == 1,
                duplicate=committed.duplicate == 1,
                ledger_index=committed.ledger_index,
            )

        frame_claim: BatchClaim[CommitResult] | None = _claim(frame, lambda c: answer(c).to_dict()) if once else None
        _region, committed = store(minimised, events, self.router, encrypt=self.encrypt, once=frame_claim)
        return answer(committed)


def _claim(batch: Batch, answer: Callable[[R], dict[str, Any]]) -> BatchClaim[R]:
    """The claim that commits ``batch`` once, storing ``answer(result)`` as JSON (`onshore.storage.processed`)."""
    return BatchClaim(batch.batch_id, clock.now_ms(), lambda result: orjson.dumps(answer(result)).decode())


def _dropped(
    region: Region,
    result: FrameResult,
    source: FrameSource,
    now_ms: int,
    reason: str,
    once: BatchClaim[FrameResult] | None,
) -> FrameResult:
    """Count a frame not collected (by day and reason) and log its collect event; nothing else is written."""
    counts = {"frames_received": 1, f"frames_dropped_{reason}": 1}
    event = _events(region.name, now_ms, counts, source.purpose)[0]  # the collect event: nothing is stored
    day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date().isoformat()
    with region.store.transaction("frame drop") as conn:
        if once is not None:
            claim(conn, once.batch_id)
        upsert_increment(conn, frame_drops, {"day": day, "reason": reason}, {"frames": 1})
        result.ledger_index = region.store.journal.append(conn, [event.to_bytes()])
        result.dropped = reason
        if once is not None:
            record_processed(conn, once, result)
    return result


def _already_stored(region: Region, vehicle_ref: str, msg_id: str) -> bool:
    with region.store.read("frame lookup") as conn:
        return find_record(conn, vehicle_ref, msg_id) is not None
