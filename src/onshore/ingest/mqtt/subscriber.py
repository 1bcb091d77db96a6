"""`onshore mqtt`: an MQTT 5 client that takes a fleet's messages and acknowledges each one after its commit.

* **Session.** It connects with ``clean_start=False`` and a session expiry (``mqtt.session_expiry_s``), under a
  client id of its own (``mqtt.client_id``): while it is away (a crash, a restart, a deploy) the broker keeps
  its subscriptions and queues its messages, and sends every unacknowledged one again when it is back.
* **Scale-out.** It subscribes with MQTT 5 shared subscriptions (``$share/<mqtt.share_group>/...``) at QoS 1:
  the processes of one group, each with its own client id, split the messages between them. Retained messages
  are not sent to it (old state, which a broker would send again at every new subscription).
* **Acknowledgement after commit.** paho's manual acknowledgement: a message's PUBACK is sent only once its
  batch is committed or it was refused (`batcher`). The broker sends at most ``mqtt.max_in_flight`` messages
  unacknowledged (the Receive Maximum onshore announces), which bounds what is held in memory.
* **Threads.** paho's network thread only hands each message over (`Delivery`); the thread that calls `run`
  reads, batches, submits and acknowledges. A lost connection is re-established by paho, backing off from 1 to
  30 seconds; what was held from the old connection is dropped unacknowledged, and the broker sends it again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from onshore import clock
from onshore.config import Settings
from onshore.ingest.mqtt.batcher import Batcher, Delivery, IngestVehicles, SpeakingFor
from onshore.ingest.mqtt.refusals import Refusals
from onshore.ingest.mqtt.topics import TopicLayout
from onshore.metrics import Metrics

log = logging.getLogger("onshore.mqtt")


class MqttSubscriber:
    """One `onshore mqtt` process's client (see the module docstring).

    Args:
        settings: the whole configuration: ``mqtt`` (the broker, topics, batching), ``ingest`` (limits),
            ``tokens`` (the gateways), ``base_dir`` (relative certificate paths).
        ingest_vehicles: admits and submits one batch per vehicle (``IngestService.ingest_vehicles``).
        speaking_for: the registry's ``speaking_for``: which vehicle a gateway's VIN is.
        client_id: this process's MQTT client id (default ``mqtt.client_id``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ingest_vehicles: IngestVehicles,
        speaking_for: SpeakingFor,
        metrics: Metrics,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings.mqtt
        self.client_id = client_id or self.settings.client_id
        self.layout = TopicLayout(self.settings.topic_root, self.settings.bases)
        gateways = frozenset(t.name for t in settings.tokens if t.role == "gateway")
        self.stopping = threading.Event()
        self.connected = threading.Event()  # set once the broker granted the subscriptions
        self._deliveries: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()  # orders acknowledgements against connects and disconnects
        self._connection = 0  # the current connection's number; 0 while disconnected
        self._connections = 0
        self.client = self._client(settings)
        publish = self._publish if self.settings.report_errors else None
        self.batcher = Batcher(
            self.settings,
            settings.ingest,
            layout=self.layout,
            client_id=self.client_id,
            gateways=gateways,
            ingest_vehicles=ingest_vehicles,
            speaking_for=speaking_for,
            metrics=metrics,
            refusals=Refusals(self.layout, metrics, gateways, publish),
            ack=self._ack,
            is_current=self._is_current,
            stopping=self.stopping,
        )

    def _client(self, settings: Settings) -> paho.Client:
        mqtt = settings.mqtt
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5, manual_ack=True
        )
        if mqtt.username is not None:
            client.username_pw_set(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None)
        if mqtt.tls:
            path = settings.resolve_path
            client.tls_set(
                ca_certs=str(path(mqtt.ca_file)) if mqtt.ca_file else None,
                certfile=str(path(mqtt.cert_file)) if mqtt.cert_file else None,
                keyfile=str(path(mqtt.key_file)) if mqtt.key_file else None,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect in the background (paho's network thread); `connected` is set once subscribed."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.max_in_flight
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()

    def run(self) -> None:
        """Take, batch, submit and acknowledge messages until `stop`; then flush what is held and disconnect
        (the session stays with the broker for ``mqtt.session_expiry_s``)."""
        self.start()
        batcher = self.batcher
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(queue.Empty):
                    batcher.take(self._deliveries.get(timeout=batcher.wait_s()))
                if batcher.due():
                    batcher.flush()
            while True:  # what arrived before the stop is processed, and acknowledged
                try:
                    batcher.take(self._deliveries.get_nowait())
                except queue.Empty:
                    break
            if batcher.held:
                batcher.flush()
        except Exception:  # a defect: stop, so that a supervisor restarts the process and the broker redelivers
            log.exception("mqtt: stopping after an unexpected failure; unacknowledged messages will come again")
            raise
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        """Ask `run` to finish (from a signal handler or another thread)."""
        self.stopping.set()

    # paho's network thread

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.error("mqtt: the broker refused the connection: %s", reason.getName())
            return
        with self._lock:
            self._connections += 1
            self._connection = self._connections
        # retained messages are old state a broker sends again at every new subscription: never taken
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe([(f, options) for f in self.layout.filters(self.settings.share_group)])
        log.info(
            "mqtt: connected to %s:%d as %s (session %s)",
            self.settings.host,
            self.settings.port,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:  # a broker ACL that does not let onshore read a base, most often
            log.error("mqtt: the broker refused %d of %d subscriptions (%s)", len(refused), len(reasons), refused[0])
        granted = len(reasons) - len(refused)
        group = self.settings.share_group
        log.info("mqtt: subscribed to %d topic filters %s", granted, f"in group {group}" if group else "(not shared)")
        self.connected.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            self._connection = 0
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("mqtt: connection lost (%s); reconnecting", reason.getName())

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        properties = getattr(message, "properties", None)
        try:
            topic = message.topic
        except UnicodeDecodeError:  # no broker should pass it on; it is refused as a topic of no base
            topic = ""
        self._deliveries.put(
            Delivery(
                connection=self._connection,
                mid=message.mid,
                qos=message.qos,
                topic=topic,
                payload=bytes(message.payload),
                received_ms=clock.now_ms(),
                content_type=getattr(properties, "ContentType", None),
                correlation=getattr(properties, "CorrelationData", None),
            )
        )

    # the batching thread

    def _is_current(self, connection: int) -> bool:
        return connection != 0 and connection == self._connection

    def _ack(self, delivery: Delivery) -> None:
        with self._lock:
            if self._is_current(delivery.connection):
                self.client.ack(delivery.mid, delivery.qos)

    def _publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=0)
