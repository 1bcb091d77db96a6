"""The distributed bus of a gateway: admitted batches to NATS JetStream, their outcomes from receipts.

`NatsBus` is the `QueueBus` of ``[bus] kind = "nats"``. A gateway (`onshore serve` with that setting) admits a
batch exactly as embedded mode does, then ``enqueue`` writes its pending receipt and publishes it to the stream of
the vehicle's region (`onshore.ingest.jetstream`), and answers 202 with the receipt once JetStream confirmed the
publish: an acknowledged batch is on disk in the stream. A worker (`onshore.worker`) processes it and writes its
answer to the receipt, which any gateway reads back (``receipt``). Gateways therefore hold no state of their own.

nats-py is asyncio; the API's routes and the CLI are threads. The bus runs one event loop in a thread of its own
and every call hands a coroutine to it, so the same bus serves uvicorn's thread pool, the CLI and tests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar, overload

from onshore.config import BusSettings
from onshore.errors import BatchRefusedError, BusUnavailableError, NotFoundError
from onshore.ingest.batch import Batch, FrameBatch, RecordBatch
from onshore.ingest.bus import Receipt
from onshore.ingest.jetstream import JetStreamLink
from onshore.model import FrameResult, IngestResult

T = TypeVar("T")
_SUBMIT_WAIT_S = 120  # how long `submit` (the CLI's ingest) waits for a worker's answer


class NatsBus:
    """Publishes admitted batches to their region's JetStream stream and reads their receipts.

    Connects on first use (`start` connects at once): a CLI command that never ingests never reaches NATS.
    """

    def __init__(self, settings: BusSettings, *, name: str = "onshore-gateway") -> None:
        self.settings = settings
        self._link = JetStreamLink(settings, name=name)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="onshore-nats", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        if self._closed:
            coro.close()
            raise BusUnavailableError("the NATS bus of this process is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BusUnavailableError(
                f"NATS JetStream did not answer within {timeout_s:g} s; nothing was acknowledged, retry later"
            ) from None

    @property
    def _call_timeout_s(self) -> float:
        # a publish is up to three JetStream round trips (receipt, payload, message), each bounded by the client
        return 3 * self.settings.publish_timeout_s + 5

    def start(self, regions: list[str]) -> None:
        """Connect and set up the streams and buckets of ``regions`` (a gateway, before it takes requests).

        Raises:
            BusUnavailableError: NATS is unreachable or refused the configuration.
        """
        for region in regions:
            self._run(self._link.region(region), self._call_timeout_s)

    def enqueue(self, batch: Batch) -> Receipt:
        """Publish ``batch`` to its region's stream; returns its receipt once JetStream confirmed it.

        A publish that was not confirmed is tried once more under the same message id: JetStream's duplicate
        window stores it once even if the first one arrived after all.

        Raises:
            BusUnavailableError (503): not confirmed; the caller must not acknowledge the batch.
        """
        try:
            self._run(self._link.publish(batch), self._call_timeout_s)
        except BusUnavailableError:
            self._run(self._link.publish(batch), self._call_timeout_s)
        return Receipt(batch.batch_id, batch.vehicle.region)

    def receipt(self, region: str, receipt_id: str, owner: str) -> dict[str, Any]:
        """See `onshore.ingest.bus.QueueBus.receipt`."""
        stored = self._run(self._link.receipt(region, receipt_id), self._call_timeout_s)
        if stored is None or stored.get("owner") != owner:
            raise NotFoundError(
                f"no receipt {receipt_id} of this vehicle in region {region} (receipts are kept bus.receipt_ttl_s)"
            )
        answer = {"receipt": receipt_id, "status": stored["status"], "region": region}
        answer.update({k: v for k, v in stored.items() if k in ("result", "error", "http_status")})
        return answer

    @overload
    def submit(self, batch: RecordBatch) -> IngestResult: ...
    @overload
    def submit(self, batch: FrameBatch) -> FrameResult: ...
    def submit(self, batch: Batch) -> IngestResult | FrameResult:
        """Publish ``batch`` and wait (up to two minutes) for a worker's answer, as embedded mode answers.

        Raises:
            BatchRefusedError: the worker refused the batch (its error's status, code and message).
            BusUnavailableError: not published, or no worker answered in time (the batch stays queued).
        """
        receipt = self.enqueue(batch)
        deadline = time.monotonic() + _SUBMIT_WAIT_S
        pause = 0.01
        while time.monotonic() < deadline:
            answer = self.receipt(receipt.region, receipt.batch_id, batch.vehicle.ref)
            if answer["status"] == "done":
                result = dict(answer["result"])
                if isinstance(batch, FrameBatch):
                    return FrameResult(**result)
                result.pop("rejected", None)
                return IngestResult(**result)
            if answer["status"] == "failed":
                error = answer["error"]
                raise BatchRefusedError(
                    int(answer["http_status"]), error["code"], error["message"], details=error.get("details")
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        raise BusUnavailableError(
            f"no worker answered batch {receipt.batch_id} within {_SUBMIT_WAIT_S} s; it stays queued: start "
            f"`onshore worker --region {receipt.region}` and fetch its receipt later"
        )

    def depth(self, region: str) -> dict[str, int]:
        """The region's backlog (`onshore.ingest.jetstream.JetStreamLink.depth`)."""
        return self._run(self._link.depth(region), self._call_timeout_s)

    def health(self) -> Literal["ok", "down"]:
        """``ok`` when connected to NATS now (connecting first if this bus never was)."""
        try:
            self._run(self._link.connect(), self._call_timeout_s)
        except BusUnavailableError:
            return "down"
        return "ok" if self._link.connected else "down"

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(BusUnavailableError):
            self._run(self._link.close(), 10)
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()
