"""What happens to a refused MQTT message: counted, logged without personal data, reported to its gateway.

A refusal is counted twice in the metrics (``onshore_refusals{status, code}``, as every adapter counts its
refusals, and ``onshore_mqtt_messages{kind, outcome="refused"}``), logged as one line naming what the topic
carries, the gateway and the error (never the topic itself, which holds the VIN, nor a value), and, with
``mqtt.report_errors``, published to ``<base>/onshore/errors``, where the gateway can read why::

    {"code": "validation_failed", "status": 422, "message": "field v: field Speed is not a fleet-telemetry
     field ...", "kind": "v", "name": "Speed", "correlation_data": "6d2d3132"}

``correlation_data`` is the hex of the message's MQTT 5 correlation data, when its publisher set one, so that a
publisher can tell which of its messages was refused without onshore echoing the VIN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from onshore.errors import OnshoreError
from onshore.ingest.mqtt.topics import MessageKind, TopicAddress, TopicLayout
from onshore.metrics import Metrics

if TYPE_CHECKING:
    from onshore.ingest.mqtt.batcher import Delivery

log = logging.getLogger("onshore.mqtt")
Publish = Callable[[str, bytes], None]


class Refusals:
    """Counts, logs and reports refused messages.

    Args:
        gateways: the configured gateway names: a name the topic gives that is none of them is not logged.
        publish: sends a report to a topic (None: reports are not published).
    """

    def __init__(self, layout: TopicLayout, metrics: Metrics, gateways: frozenset[str], publish: Publish | None):
        self.layout = layout
        self.metrics = metrics
        self.gateways = gateways
        self.publish = publish

    def refused(self, delivery: Delivery, address: TopicAddress | None, error: OnshoreError) -> None:
        """Count, log and report one refused message (nothing of it was stored)."""
        kind = address.kind if address is not None else MessageKind.UNKNOWN
        gateway = address.gateway if address is not None and address.gateway in self.gateways else "(none)"
        self.metrics.refusal(error.status, error.code)
        log.warning("mqtt: refused a %s message of gateway %s: %s: %s", kind.value, gateway, error.code, error.message)
        if self.publish is None or address is None or gateway == "(none)":
            return  # no base of a known gateway to report to
        report = {
            "code": error.code,
            "status": error.status,
            "message": error.message,
            "kind": kind.value,
            "name": address.name,
            "correlation_data": delivery.correlation.hex() if delivery.correlation else None,
        }
        try:
            self.publish(self.layout.errors_topic(address.base), orjson.dumps(report))
        except Exception:  # noqa: BLE001 - a report that cannot be sent must not stop the subscription
            log.warning("mqtt: could not publish the refusal report")
