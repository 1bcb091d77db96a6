"""`onshore worker --region NAME`: processes the batches gateways published to the region's JetStream stream.

A worker is the far side of the distributed bus. It fetches from the region's durable pull consumer (shared by
all of the region's workers; ``bus.max_ack_pending`` bounds what they hold in flight), and for each message:

1. decodes it (`onshore.ingest.batch.decode_message`); a `BatchRef`'s payload is fetched from the payload store,
   unless the batch was committed before (a redelivery needs no payload);
2. processes it through `Processor.process_once`, in a thread (the event loop keeps reporting the messages in
   progress): classify → minimise → store → ledger, with the batch's id claimed in the same transaction, so a
   redelivered batch is answered from its first commit and never stored, logged or counted twice. The plain
   record batches of one fetch (up to ``bus.fetch_batch``) are processed together
   (`Processor.process_records_once`): committed in one transaction, one hold of the region's write lock, with
   the rows, events and answers one-by-one processing gives them; a batch that is refused fails alone;
3. then deletes the payload, writes the answer to the batch's receipt, and only then acknowledges.

A batch processing refuses (a value of the wrong shape, a malformed message, a batch of another release) is
*terminated*: its error goes to the receipt and it is never delivered again, so it blocks nothing behind it. A
transient failure (the database or NATS down: every 503 error; a group's commit failing so naks all of the group)
is *nak*-ed with ``bus.nak_delay_s`` and retried for as long as the stream keeps the batch. A worker killed at any
point loses nothing: what it had not acknowledged is delivered again after ``bus.ack_wait_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.msg import Msg

from onshore import clock
from onshore.config import Settings
from onshore.errors import BatchFormatError, ConfigError, OnshoreError
from onshore.ingest.batch import Batch, BatchRef, RecordBatch, claimed_sender, decode, decode_message
from onshore.ingest.jetstream import JetStreamLink
from onshore.ledger.store import MerkleLog
from onshore.pipeline.process import Processor
from onshore.pipeline.store import RegionRouter
from onshore.rules.loader import RuleBook
from onshore.storage.region import Region, open_regions
from onshore.vision.stages import VisionStages

logger = logging.getLogger("onshore.worker")
_RECEIPT_KEY = re.compile(r"[0-9a-f]{32}")  # the batch ids admit gives (`onshore.ingest.batch`)
_PRUNE_EVERY_S = 3600


@dataclass
class WorkerStats:
    """What a worker did (printed when it stops)."""

    processed: int = 0  # batches answered and acknowledged (redeliveries included)
    redelivered: int = 0  # of those, delivered more than once
    refused: int = 0  # terminated with their error on the receipt
    retried: int = 0  # nak-ed after a transient failure

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Worker:
    """Consumes one region's stream with ``processor``, over ``link`` (both owned by the caller)."""

    def __init__(self, settings: Settings, region: str, processor: Processor, link: JetStreamLink) -> None:
        self.settings = settings
        self.region = region
        self.processor = processor
        self.link = link
        self.stats = WorkerStats()
        # One thread processes: the record store serialises a region's commits anyway, and a second thread would
        # only contend for the interpreter. Run more workers to use more cores.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"onshore-worker-{region}")

    async def run(self, stop: asyncio.Event, *, idle_exit_s: float | None = None) -> WorkerStats:
        """Fetch and process until ``stop`` is set (or, with ``idle_exit_s``, nothing came for that long)."""
        subscription = await self.link.consumer(self.region)
        bus = self.settings.bus
        idle_since = asyncio.get_running_loop().time()
        next_prune = 0.0
        while not stop.is_set():
            now = asyncio.get_running_loop().time()
            if now >= next_prune:
                await self._prune()
                next_prune = now + _PRUNE_EVERY_S
            try:
                messages = await subscription.fetch(bus.fetch_batch, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                messages = []
            except nats.errors.Error as exc:  # disconnected: the client reconnects; try again shortly
                logger.warning("fetch failed (%s); retrying", exc.__class__.__name__)
                await asyncio.sleep(1)
                continue
            if not messages:
                if idle_exit_s is not None and asyncio.get_running_loop().time() - idle_since >= idle_exit_s:
                    break
                continue
            unfinished = list(messages)
            heartbeat = asyncio.create_task(self._heartbeat(unfinished))
            try:
                await self._handle_all(messages, unfinished)
            finally:
                heartbeat.cancel()
            idle_since = asyncio.get_running_loop().time()
        return self.stats

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def _heartbeat(self, unfinished: list[Msg]) -> None:
        """Tell JetStream the fetched messages are in progress, so a long batch is not delivered again meanwhile."""
        every = max(0.5, self.settings.bus.ack_wait_s / 3)
        while True:
            await asyncio.sleep(every)
            for message in list(unfinished):
                with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                    await message.in_progress()

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _prune(self) -> None:
        """Forget processed batches the stream can no longer redeliver (older than its max age and window)."""
        bus = self.settings.bus
        keep_ms = int((bus.max_age_s + bus.duplicate_window_s) * 1000) + 86_400_000
        region: Region = self.processor.router.regions[self.region]
        try:
            await self._in_thread(region.store.prune_processed, clock.now_ms() - keep_ms)
        except OnshoreError as exc:
            logger.warning("pruning processed batches failed: %s", exc.message)

    async def _handle_all(self, messages: list[Msg], unfinished: list[Msg]) -> None:
        """Process the fetched messages, their plain record batches together, then answer each in order."""
        deliveries = [_Delivery.of(message, self.region) for message in messages]
        group = [d for d in deliveries if isinstance(d.batch, RecordBatch)]
        if len(group) > 1:
            batches = [d.batch for d in group if isinstance(d.batch, RecordBatch)]
            answers: list[dict[str, Any] | Exception | None]
            try:
                answers = await self._in_thread(self.processor.process_records_once, batches)
            except Exception as exc:  # noqa: BLE001 - no batch of the group was answered
                if isinstance(exc, OnshoreError) and exc.status == 503:
                    answers = [exc] * len(group)  # the database is down: the whole group waits and comes back
                else:  # unexpected: each batch goes on its own, to its own outcome
                    logger.error("a group of %d batches failed (%s); one by one", len(group), type(exc).__name__)
                    answers = [None] * len(group)
            for delivery, answer in zip(group, answers, strict=True):
                delivery.answer = answer
        for delivery in deliveries:
            if delivery.answer is None:
                delivery.answer = await self._process(delivery)
            await self._conclude(delivery)
            unfinished.remove(delivery.message)

    async def _process(self, delivery: _Delivery) -> dict[str, Any] | Exception:
        """The answer of one batch on its own (a frame, a batch by reference, a lone record batch), or its error."""
        batch = delivery.batch
        try:
            if isinstance(batch, Exception):
                raise batch
            if isinstance(batch, BatchRef):
                answer = await self._in_thread(self.processor.outcome_of, batch.vehicle, batch.batch_id)
                if answer is None:
                    full = decode(await self.link.fetch_payload(batch))
                    if full.batch_id != batch.batch_id or full.vehicle != batch.vehicle:
                        raise BatchFormatError("the batch's payload belongs to another batch; nothing was processed")
                    answer = await self._in_thread(self.processor.process_once, full)
                return answer  # type: ignore[no-any-return]
            return await self._in_thread(self.processor.process_once, batch)  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001 - the batch's outcome: concluded by `_conclude`
            return exc

    async def _conclude(self, delivery: _Delivery) -> None:
        """Answer a processed batch: its receipt then its ack, a refusal, or a nak (503s and bugs)."""
        message, batch_id, answer = delivery.message, delivery.batch_id, delivery.answer
        if isinstance(answer, OnshoreError):
            if answer.status == 503:  # the database, the key store or NATS is down: the batch waits and comes back
                self.stats.retried += 1
                delay = self.settings.bus.nak_delay_s
                logger.warning("batch %s: %s; delivered again in %g s", batch_id, answer.code, delay)
                with contextlib.suppress(nats.errors.Error):
                    await message.nak(delay=delay)
                return
            await self._refuse(message, batch_id, delivery.owner, delivery.ref, answer)
            return
        if isinstance(answer, Exception):  # a bug must not lose the batch: it waits for a fixed release
            self.stats.retried += 1
            logger.error("batch %s: unexpected %s; delivered again later", batch_id, answer.__class__.__name__)
            with contextlib.suppress(nats.errors.Error):
                await message.nak(delay=max(self.settings.bus.nak_delay_s, 30))
            return
        receipt = {"status": "done", "region": self.region, "owner": delivery.owner, "result": answer}
        if not await self._finish(message, batch_id, delivery.ref, receipt):
            return
        self.stats.processed += 1
        self.stats.redelivered += int((message.metadata.num_delivered or 1) > 1)

    async def _refuse(self, message: Msg, batch_id: str, owner: str, ref: BatchRef | None, exc: OnshoreError) -> None:
        """Terminate a batch processing refused, its error on the receipt (no redelivery, nothing stored)."""
        logger.warning("batch %s refused: %s", batch_id or "(no id)", exc.code)
        if not owner or not _RECEIPT_KEY.fullmatch(batch_id):  # not published by a gateway: nobody holds a receipt
            with contextlib.suppress(nats.errors.Error):
                await message.term()
            self.stats.refused += 1
            return
        receipt = {
            "status": "failed",
            "region": self.region,
            "owner": owner,
            "http_status": exc.status,
            "error": exc.to_dict()["error"],
        }
        if await self._finish(message, batch_id, ref, receipt, terminate=True):
            self.stats.refused += 1

    async def _finish(
        self, message: Msg, batch_id: str, ref: BatchRef | None, receipt: dict[str, Any], *, terminate: bool = False
    ) -> bool:
        """Delete the payload, write the receipt, then acknowledge (or terminate). False when NATS failed first:
        the message is then left unacknowledged and comes back, to be answered from its stored outcome."""
        try:
            if ref is not None:
                await self.link.delete_payload(self.region, batch_id)
            await self.link.put_receipt(self.region, batch_id, receipt)
            await (message.term() if terminate else message.ack())
        except (OnshoreError, nats.errors.Error) as exc:
            logger.warning("batch %s: could not finish (%s); it will be delivered again", batch_id, type(exc).__name__)
            self.stats.retried += 1
            return False
        return True


@dataclass(frozen=True)
class Envelope:
    """Whose a bus message is: the batch id whose receipt answers it, and the vehicle pseudonym ('' unknown)."""

    batch_id: str
    owner: str


def open_message(
    data: bytes, headers: Mapping[str, str] | None, region: str
) -> tuple[Envelope, Batch | BatchRef | BatchFormatError]:
    """Read one message of ``region``'s stream: whose it is, and the batch (or reference) it carries, or why it is
    refused (`BatchFormatError`: not a batch of this release, an id admit never gives, another region's batch).

    A refused message's envelope names a receipt only where the bytes claim the batch id they were published
    under (``Nats-Msg-Id``): garbage answers nobody.
    """
    batch_id = (headers or {}).get("Nats-Msg-Id", "")
    try:
        batch = decode_message(data)
    except BatchFormatError as exc:
        claimed_id, claimed_owner = claimed_sender(data)
        owner = (claimed_owner or "") if claimed_id == batch_id else ""
        return Envelope(batch_id, owner), exc
    envelope = Envelope(batch.batch_id, batch.vehicle.ref)
    if not _RECEIPT_KEY.fullmatch(batch.batch_id):
        return envelope, BatchFormatError(
            "the batch's id is not one admit gives (32 hex digits); nothing was processed"
        )
    if batch.vehicle.region != region:
        return envelope, BatchFormatError(
            f"a batch of region {batch.vehicle.region!r} on the stream of region {region!r}; nothing was processed"
        )
    return envelope, batch


@dataclass
class _Delivery:
    """One fetched message: its batch (or why it cannot be processed) and, once processed, its answer."""

    message: Msg
    batch_id: str
    owner: str  # the vehicle whose receipt it is ("" when none is known)
    ref: BatchRef | None  # a batch by reference: its payload is deleted when it is answered
    batch: Batch | BatchRef | Exception
    answer: dict[str, Any] | Exception | None = None

    @classmethod
    def of(cls, message: Msg, region: str) -> _Delivery:
        """Decode ``message``, a batch of ``region``'s stream (`open_message`)."""
        envelope, batch = open_message(message.data, message.headers, region)
        ref = batch if isinstance(batch, BatchRef) else None
        return cls(message, envelope.batch_id, envelope.owner, ref, batch)


def open_worker_region(settings: Settings, region: str) -> tuple[Processor, dict[str, Region], VisionStages]:
    """The processor of one region (its stores only), with frame stages of its own.

    Raises:
        ConfigError: ``region`` is not configured, or ``[bus] kind`` is not ``nats``.
        SchemaVersionError: the region's record store is not at head (`onshore db upgrade`).
    """
    if settings.bus.kind != "nats":
        raise ConfigError('onshore worker takes batches from NATS JetStream: set [bus] kind = "nats"')
    if region not in settings.regions:
        raise ConfigError(f"region {region!r} is not configured; configured: {', '.join(settings.regions)}")
    rulebook = RuleBook.load(settings.rules.packs, enable_unconfirmed=settings.rules.enable_unconfirmed)
    rulebook.for_jurisdiction(settings.regions[region].jurisdiction)
    regions = open_regions(settings, journal=MerkleLog, only=[region])
    stages = VisionStages(settings.frames)
    return Processor(rulebook, RegionRouter(regions), frames=stages), regions, stages


def run_worker(settings: Settings, region: str, *, idle_exit_s: float | None = None) -> WorkerStats:
    """Run a worker of ``region`` in this process until SIGTERM or SIGINT (or idle for ``idle_exit_s``).

    Raises:
        ConfigError, SchemaVersionError: see `open_worker_region`.
        BusUnavailableError: NATS cannot be reached at start.
    """
    processor, regions, stages = open_worker_region(settings, region)
    link = JetStreamLink(settings.bus, name=f"onshore-worker-{region}")
    worker = Worker(settings, region, processor, link)

    async def main() -> WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await link.connect()
            logger.info("worker of region %s consuming", region)
            return await worker.run(stop, idle_exit_s=idle_exit_s)
        finally:
            await link.close()

    try:
        return asyncio.run(main())
    finally:
        worker.close()
        stages.close()
        for opened in regions.values():
            opened.close()
