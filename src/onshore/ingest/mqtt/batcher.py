"""Messages held until their batch commits: grouped per vehicle, submitted, then acknowledged in arrival order.

`Batcher.take` reads a delivered message (topic, payload) into records; `Batcher.flush` submits what is held,
one batch per vehicle, and only then acknowledges every held message, in the order they arrived:

* a message whose records were committed (stored, or counted as duplicates or as dropped without consent) and a
  message that was refused (garbage, an unknown field, a VIN not registered to the gateway, an oversize
  payload, a value classify refuses) are acknowledged alike: a refused message never blocks the subscription.
  A refusal is counted, logged without personal data, and reported (`Refusals`).
* a transient failure (a database or key store down: 503, a write conflict) acknowledges nothing: the flush
  waits and tries again, backing off, while the broker holds back further messages (its Receive Maximum).
* a connection that drops abandons the held messages unacknowledged: the broker redelivers them on the next
  connection of the session, and what was committed already counts as duplicates (stable message ids).

A batch of several messages that processing refuses is tried again message by message, so that only the bad
message is refused and the good ones beside it are stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from onshore.auth import Principal, Role
from onshore.config import IngestSettings, MqttSettings
from onshore.errors import ForbiddenError, InputError, OnshoreError
from onshore.ingest.mqtt.messages import ArrivalStamps, message_records
from onshore.ingest.mqtt.rates import MessageRates
from onshore.ingest.mqtt.refusals import Refusals
from onshore.ingest.mqtt.topics import MessageKind, TopicAddress, TopicLayout, check_address
from onshore.metrics import Metrics
from onshore.model import IngestResult, Vehicle
from onshore.pipeline.admit import WireRecord

log = logging.getLogger("onshore.mqtt")
SpeakingFor = Callable[..., list[Vehicle]]  # VehicleRegistry.speaking_for(principal, vins, place=...)
IngestVehicles = Callable[[Sequence[tuple[Vehicle, list[WireRecord]]]], list[IngestResult]]
_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """One message as the broker delivered it: what the network thread hands to the batcher."""

    connection: int  # the connection it came on: its packet id is acknowledged on that connection only
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_ms: int
    content_type: str | None = None
    correlation: bytes | None = None  # MQTT 5 correlation data, echoed in a refusal report


@dataclass
class _Held:
    delivery: Delivery
    address: TopicAddress | None
    records: list[WireRecord] = field(default_factory=list)
    error: OnshoreError | None = None


class Abandoned(Exception):
    """The flush stopped before its commit: the process is stopping or the connection dropped (internal)."""


def transient(exc: OnshoreError) -> bool:
    """Whether trying again later may succeed: a store or key store down, busy, or a lost write conflict."""
    return exc.status in (429, 503)


class Batcher:
    """Holds delivered messages and flushes them (see the module docstring).

    Args:
        ack: acknowledges a delivery (nothing when its connection is gone).
        is_current: whether deliveries of that connection can still be acknowledged.
        stopping: set when the process stops: a flush waiting out a transient failure gives up.
    """

    def __init__(
        self,
        settings: MqttSettings,
        limits: IngestSettings,
        *,
        layout: TopicLayout,
        client_id: str,
        gateways: frozenset[str],
        ingest_vehicles: IngestVehicles,
        speaking_for: SpeakingFor,
        metrics: Metrics,
        refusals: Refusals,
        ack: Callable[[Delivery], None],
        is_current: Callable[[int], bool],
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.layout = layout
        self.client_id = client_id
        self.gateways = gateways
        self._stamps = ArrivalStamps()
        self.rates = MessageRates(settings)
        self._ingest_vehicles = ingest_vehicles
        self._speaking_for = speaking_for
        self.metrics = metrics
        self.refusals = refusals
        self._ack = ack
        self._is_current = is_current
        self._stopping = stopping
        self._held: list[_Held] = []
        self._records = 0
        self._first_at: float | None = None
        self._flushing: set[int] = set()  # the connections of the messages being flushed

    @property
    def held(self) -> int:
        return len(self._held)

    def take(self, delivery: Delivery) -> None:
        """Read ``delivery`` into records and hold it until the next flush (a refusal is held too, so that its
        acknowledgement keeps its place in the order)."""
        held = _Held(delivery, None)
        try:
            held.address = self.layout.parse(delivery.topic)  # kept when refused: its base takes the report
            check_address(held.address, self.gateways)
            self.rates.admit(held.address.gateway, held.address.vin)
            received = delivery.received_ms
            if held.address.kind is MessageKind.V:
                received = self._stamps.stamp(held.address, received)
            held.records = message_records(
                held.address,
                delivery.payload,
                received_ms=received,
                stamped_by=self.client_id,
                content_type=delivery.content_type,
                limits=self.limits,
                max_bytes=self.settings.max_message_bytes,
            )
        except OnshoreError as exc:
            held.error = exc
        if self._first_at is None:
            self._first_at = time.monotonic()
        self._held.append(held)
        self._records += len(held.records)
        self.metrics.mqtt_unacked.inc()

    def wait_s(self) -> float:
        """Seconds until the held messages are due (a while when none are held)."""
        if self._first_at is None:
            return 0.5
        return max(0.0, self._first_at + self.settings.flush_ms / 1000 - time.monotonic())

    def due(self) -> bool:
        """Whether to flush now: enough records, as many messages as the broker sends unacknowledged, or time."""
        if not self._held:
            return False
        return (
            self._records >= self.settings.flush_records
            or len(self._held) >= self.settings.max_in_flight
            or self.wait_s() <= 0
        )

    def flush(self) -> None:
        """Submit every held message's records, one batch per vehicle, then acknowledge them all in order.

        Held messages of a connection that is gone are dropped unacknowledged (the broker sends them again).
        """
        held, self._held, self._records, self._first_at = self._held, [], 0, None
        live = [h for h in held if self._is_current(h.delivery.connection)]
        self._flushing = {h.delivery.connection for h in live}
        try:
            self._process([h for h in live if h.error is None])
        except Abandoned:
            log.info("mqtt: %d held messages left unacknowledged; the broker will send them again", len(live))
            self.metrics.mqtt_unacked.dec(len(held))
            return
        for h in live:
            kind = h.address.kind if h.address is not None else MessageKind.UNKNOWN
            if h.error is not None:
                self.refusals.refused(h.delivery, h.address, h.error)
            self.metrics.mqtt_message(kind.value, "refused" if h.error is not None else "processed")
            self._ack(h.delivery)
        self.metrics.mqtt_unacked.dec(len(held))

    def _process(self, held: list[_Held]) -> None:
        groups: dict[tuple[str, str], list[_Held]] = {}
        for h in held:
            assert h.address is not None
            groups.setdefault((h.address.gateway, h.address.vin.strip().upper()), []).append(h)
        vehicles = self._vehicles(list(groups))
        for key, members in groups.items():
            vehicle = vehicles[key]
            if isinstance(vehicle, OnshoreError):
                for h in members:
                    h.error = vehicle
            else:
                for chunk in self._chunks(members):
                    self._submit(vehicle, chunk)

    def _vehicles(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Vehicle | OnshoreError]:
        """The vehicle of each (gateway, VIN), or why the gateway may not speak for it: one registry look-up per
        gateway, and one per VIN only when a look-up refused."""
        found: dict[tuple[str, str], Vehicle | OnshoreError] = {}
        by_gateway: dict[str, list[str]] = {}
        for gateway, vin in keys:
            by_gateway.setdefault(gateway, []).append(vin)
        for gateway, vins in by_gateway.items():
            principal = Principal(role=Role.GATEWAY, name=gateway)
            try:
                answers: Sequence[Vehicle | OnshoreError] = self._retrying(partial(self._look_up, principal, vins))
            except (InputError, ForbiddenError):  # one VIN is refused: which one?
                answers = [self._one_vehicle(principal, vin) for vin in vins]
            except OnshoreError as exc:
                answers = [exc] * len(vins)
            found.update(((gateway, vin), answer) for vin, answer in zip(vins, answers, strict=True))
        return found

    def _look_up(self, principal: Principal, vins: list[str]) -> list[Vehicle]:
        return self._speaking_for(principal, vins, place="the topic's VIN")

    def _one_vehicle(self, principal: Principal, vin: str) -> Vehicle | OnshoreError:
        try:
            return self._retrying(partial(self._look_up, principal, [vin]))[0]
        except OnshoreError as exc:
            return exc

    def _chunks(self, members: list[_Held]) -> list[list[_Held]]:
        """``members`` cut at message boundaries into batches of at most ``ingest.max_batch_records`` records."""
        chunks: list[list[_Held]] = [[]]
        size = 0
        for h in members:
            if chunks[-1] and size + len(h.records) > self.limits.max_batch_records:
                chunks.append([])
                size = 0
            chunks[-1].append(h)
            size += len(h.records)
        return chunks

    def _submit(self, vehicle: Vehicle, chunk: list[_Held]) -> None:
        try:
            self._ingest(vehicle, chunk)
        except OnshoreError as exc:
            if len(chunk) == 1:
                chunk[0].error = exc
                return
            for h in chunk:  # find the message processing refuses; store the others
                try:
                    self._ingest(vehicle, [h])
                except OnshoreError as one:
                    h.error = one

    def _ingest(self, vehicle: Vehicle, chunk: list[_Held]) -> None:
        records = [r for h in chunk for r in h.records]

        self._retrying(partial(self._ingest_vehicles, [(vehicle, records)]))

    def _retrying(self, work: Callable[[], T]) -> T:
        """``work()``, run again after a transient failure, backing off, until it succeeds or fails otherwise.

        Raises:
            Abandoned: the process is stopping, or a held message's connection dropped, while waiting.
            OnshoreError: a failure that is not transient.
        """
        attempt = 0
        while True:
            try:
                try:
                    return work()
                except OnshoreError:
                    raise
                except Exception as exc:  # a defect: refuse what it was for, keep the subscription going, say it
                    log.exception("mqtt: a batch failed unexpectedly")
                    raise OnshoreError(f"processing failed unexpectedly ({exc.__class__.__name__})") from exc
            except OnshoreError as exc:
                if not transient(exc):
                    raise
                delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                log.warning("mqtt: %s (%s); nothing acknowledged, trying again in %.1f s", exc.code, exc.message, delay)
                attempt += 1
                if self._stopping.wait(delay) or not any(self._is_current(c) for c in self._flushing):
                    raise Abandoned from exc
