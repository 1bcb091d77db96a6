"""NATS JetStream for onshore: each region's names and topology, and the operations gateways and workers use.

One region has, all named from ``bus.prefix`` (`RegionNames`):

* a **stream** ``PREFIX-REGION`` on the subject ``PREFIX.REGION.batches``, work-queue retention (a batch leaves
  the stream when a worker acknowledges it), file storage, ``bus.max_age_s``, and a duplicate window: a publish
  carries the batch id as ``Nats-Msg-Id``, so a gateway's retried publish is stored once;
* a durable pull **consumer** ``PREFIX-REGION-workers`` shared by the region's workers, explicit acknowledgement,
  ``bus.ack_wait_s`` and ``bus.max_ack_pending`` (the back-pressure: no worker holds more than that in flight);
* a key-value bucket ``PREFIX-REGION-receipts`` (TTL ``bus.receipt_ttl_s``): per batch id, ``pending`` (written by
  the gateway before it publishes) and then the answer or the error (written by the worker after its commit).
  Receipts hold counts and error messages, never personal data, and no process keeps them in memory: any gateway
  answers for a batch any other gateway took;
* an object store ``PREFIX-REGION-payloads`` (TTL ``bus.max_age_s``): a batch larger than a message may be (every
  camera frame, and record batches over the server's ``max_payload``) is put there under its batch id and the
  stream carries a `BatchRef`; the worker deletes it once the batch is committed or refused.

NATS errors are translated here: an unreachable server or an unconfirmed publish is `BusUnavailableError` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from onshore.config import BusSettings
from onshore.errors import BatchFormatError, BusUnavailableError, NotFoundError
from onshore.ingest.batch import Batch, BatchRef, FrameBatch

logger = logging.getLogger("onshore.bus")
_HEADROOM = 8 * 1024  # of the server's max_payload, for headers and the protocol


@dataclass(frozen=True)
class RegionNames:
    """The JetStream names of one region's stream, consumer and buckets."""

    stream: str
    subject: str
    durable: str
    receipts: str
    payloads: str

    @classmethod
    def of(cls, prefix: str, region: str) -> RegionNames:
        return cls(
            stream=f"{prefix}-{region}",
            subject=f"{prefix}.{region}.batches",
            durable=f"{prefix}-{region}-workers",
            receipts=f"{prefix}-{region}-receipts",
            payloads=f"{prefix}-{region}-payloads",
        )


@dataclass
class _RegionHandles:
    names: RegionNames
    receipts: KeyValue
    payloads: ObjectStore


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        raise BusUnavailableError(
            f"NATS JetStream did not answer while {what} ({exc.__class__.__name__}); nothing was acknowledged, "
            "retry after the Retry-After seconds"
        ) from exc


class JetStreamLink:
    """One connection to NATS and the handles of the regions it serves; every method runs on one event loop."""

    def __init__(self, settings: BusSettings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._regions: dict[str, _RegionHandles] = {}
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailableError("not connected to NATS yet")
        return self._js

    async def connect(self) -> None:
        """Connect (once) to ``bus.url``; reconnects after that are the client's, forever.

        Raises:
            BusUnavailableError: no server of ``bus.url`` answered.
        """
        if self._nc is not None:
            return

        async def on_error(exc: Exception) -> None:
            logger.warning("NATS connection: %s", exc.__class__.__name__)

        async def on_disconnect() -> None:
            if not self._closing:
                logger.warning("disconnected from NATS; reconnecting")

        try:
            self._nc = await nats.connect(
                servers=[u.strip() for u in self.settings.url.split(",")],
                name=self.name,
                connect_timeout=3,
                allow_reconnect=True,
                max_reconnect_attempts=1,  # the first connection: fail fast (the client would retry forever)
                reconnect_time_wait=1,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
            )
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise BusUnavailableError(
                f"cannot reach NATS at bus.url ({exc.__class__.__name__}); start it or correct bus.url"
            ) from exc
        # connected once: from now on a lost connection is re-established for as long as it takes (the client reads
        # this option at each attempt)
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream(timeout=self.settings.publish_timeout_s)

    async def close(self) -> None:
        self._closing = True
        if self._nc is not None:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError, OSError):
                await self._nc.close()
        self._nc = self._js = None
        self._regions.clear()

    @property
    def max_inline_bytes(self) -> int:
        """The largest batch encoding carried in the message itself; larger ones go by reference."""
        assert self._nc is not None
        return max(0, self._nc.max_payload - _HEADROOM)

    async def region(self, region: str) -> _RegionHandles:
        """The region's stream and buckets, created or brought to ``bus.*`` on first use.

        Raises:
            BusUnavailableError: JetStream did not answer, or refused the configuration (the message says why).
        """
        handles = self._regions.get(region)
        if handles is not None:
            return handles
        await self.connect()
        names = RegionNames.of(self.settings.prefix, region)
        s = self.settings
        stream = StreamConfig(
            name=names.stream,
            subjects=[names.subject],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            max_age=float(s.max_age_s),
            duplicate_window=s.duplicate_window_s,
        )
        async with _translated(f"setting up stream {names.stream}"):
            try:
                await self.js.add_stream(stream)
            except nats.js.errors.BadRequestError:  # exists with other settings: bring it to these
                await self.js.update_stream(stream)
            receipts = await self.js.create_key_value(
                KeyValueConfig(bucket=names.receipts, ttl=float(s.receipt_ttl_s), history=1, replicas=s.replicas)
            )
            payloads = await self.js.create_object_store(
                names.payloads, ObjectStoreConfig(ttl=float(s.max_age_s), replicas=s.replicas)
            )
        handles = self._regions[region] = _RegionHandles(names, receipts, payloads)
        return handles

    # -- the gateway's side ----------------------------------------------------------------------

    async def publish(self, batch: Batch) -> bool:
        """Write the batch's pending receipt, then publish the batch (by reference when it is large) to its
        region's stream, and wait for JetStream's confirmation. Returns whether JetStream had it already.

        Raises:
            BusUnavailableError: not confirmed within ``bus.publish_timeout_s``; the caller must not acknowledge.
        """
        region = batch.vehicle.region
        handles = await self.region(region)
        names = handles.names
        pending = {"status": "pending", "region": region, "owner": batch.vehicle.ref}
        data = batch.encode()
        async with _translated(f"publishing a batch to {names.stream}"):
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):  # a retry: the receipt exists
                await handles.receipts.create(batch.batch_id, orjson.dumps(pending))
            if isinstance(batch, FrameBatch) or len(data) > self.max_inline_bytes:
                await handles.payloads.put(batch.batch_id, data)
                data = BatchRef(
                    batch_id=batch.batch_id,
                    vehicle=batch.vehicle,
                    received_ms=batch.received_ms,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                ).encode()
            ack = await self.js.publish(
                names.subject, data, stream=names.stream, headers={"Nats-Msg-Id": batch.batch_id}
            )
        return bool(ack.duplicate)

    async def receipt(self, region: str, batch_id: str) -> dict[str, Any] | None:
        """The receipt stored for ``batch_id`` (pending, done or failed, with its owner), or None."""
        handles = await self.region(region)
        async with _translated("reading a receipt"):
            try:
                entry = await handles.receipts.get(batch_id)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                return None
        return None if entry.value is None else orjson.loads(entry.value)  # type: ignore[no-any-return]

    # -- the worker's side -----------------------------------------------------------------------

    async def consumer(self, region: str) -> JetStreamContext.PullSubscription:
        """The region's durable pull consumer, created or brought to ``bus.*``, bound for fetching."""
        handles = await self.region(region)
        names = handles.names
        s = self.settings
        config = ConsumerConfig(
            durable_name=names.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=s.ack_wait_s,
            max_ack_pending=s.max_ack_pending,
            max_deliver=-1,  # a transient failure (database down) is retried for as long as the stream keeps it
            filter_subject=names.subject,
        )
        async with _translated(f"setting up consumer {names.durable}"):
            await self.js.add_consumer(names.stream, config)
            return await self.js.pull_subscribe_bind(consumer=names.durable, stream=names.stream)

    async def put_receipt(self, region: str, batch_id: str, receipt: dict[str, Any]) -> None:
        handles = await self.region(region)
        async with _translated("writing a receipt"):
            await handles.receipts.put(batch_id, orjson.dumps(receipt))

    async def fetch_payload(self, ref: BatchRef) -> bytes:
        """The referenced batch's bytes, checked against the reference.

        Raises:
            NotFoundError: the payload is gone (expired after ``bus.max_age_s``, or deleted).
            BatchFormatError: the bytes are not the ones referenced.
        """
        handles = await self.region(ref.vehicle.region)
        async with _translated("fetching a batch payload"):
            try:
                data = (await handles.payloads.get(ref.batch_id)).data or b""
            except (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError):
                raise NotFoundError(
                    "the batch's payload is no longer in the bus's payload store (kept bus.max_age_s); "
                    "the vehicle must send it again"
                ) from None
        if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise BatchFormatError(
                f"the batch's payload ({len(data)} bytes) is not the one its reference names ({ref.size} bytes); "
                "nothing was processed"
            )
        return data

    async def delete_payload(self, region: str, batch_id: str) -> None:
        handles = await self.region(region)
        async with _translated("deleting a batch payload"):
            with contextlib.suppress(nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError):
                await handles.payloads.delete(batch_id)

    async def depth(self, region: str) -> dict[str, int]:
        """The region's backlog: messages in the stream, and the consumer's pending, in-flight, redelivered."""
        handles = await self.region(region)
        names = handles.names
        async with _translated("reading the stream's state"):
            stream = await self.js.stream_info(names.stream)
            try:
                consumer = await self.js.consumer_info(names.stream, names.durable)
            except nats.js.errors.NotFoundError:
                consumer = None
        return {
            "messages": int(stream.state.messages),
            "pending": int(consumer.num_pending or 0) if consumer else int(stream.state.messages),
            "in_flight": int(consumer.num_ack_pending or 0) if consumer else 0,
            "redelivered": int(consumer.num_redelivered or 0) if consumer else 0,
        }
