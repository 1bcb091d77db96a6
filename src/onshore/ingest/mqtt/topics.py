"""The MQTT topic layout onshore takes, and which gateway a topic belongs to.

A gateway's topics lie under its *base*: ``<topic_root>/<gateway>`` (the level after ``mqtt.topic_root`` names
the gateway), or a base configured for it in ``mqtt.bases``. Under a base, the layout of fleet-telemetry's MQTT
dispatcher (its ``topic_base`` set to the base) and onshore's own batch topic:

=====================================  =========================================================================
topic                                  payload
=====================================  =========================================================================
``<base>/<VIN>/v/<Field>``             one datum: its JSON value (``75.5``, ``{"latitude": …}``, ``null``)
``<base>/<VIN>/alerts/<Name>/current`` ``{"StartedAt", "EndedAt", "Audiences"}`` (RFC 3339 times)
``<base>/<VIN>/alerts/<Name>/history`` a JSON array of those
``<base>/<VIN>/errors/<Name>``         ``{"Body", "Tags", "CreatedAt"}``
``<base>/<VIN>/connectivity``          ``{"ConnectionId", "Status", "CreatedAt"}``
``<base>/onshore/<VIN>/batch``         an onshore batch: a JSON array (or NDJSON) of records, as ``POST /v1/ingest``
``<base>/onshore/errors``              onshore's reports of the messages it refused (onshore publishes here)
=====================================  =========================================================================

The broker decides who may publish under a base (its authentication and ACL); onshore trusts the topic for the
gateway, and the registry for the vehicle: a VIN is taken only when it is registered to that gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from onshore.errors import ForbiddenError, InputError

ONSHORE_LEVEL = "onshore"  # the level of onshore's own topics under a base: batches in, error reports out
ERRORS_TOPIC = f"{ONSHORE_LEVEL}/errors"


class MessageKind(StrEnum):
    """What a topic carries (the ``kind`` label of onshore's MQTT metrics)."""

    V = "v"  # one datum of a `V` record
    ALERT_CURRENT = "alerts_current"
    ALERT_HISTORY = "alerts_history"
    ERRORS = "errors"
    CONNECTIVITY = "connectivity"
    BATCH = "batch"  # an onshore batch
    UNKNOWN = "unknown"  # a topic of no known shape


# The filters under one base, each a shape the parser reads (single-level wildcards only: a VIN, a name).
_SHAPES = ("+/v/+", "+/alerts/+/current", "+/alerts/+/history", "+/errors/+", "+/connectivity", "onshore/+/batch")


@dataclass(frozen=True)
class TopicAddress:
    """Where a message came from: the gateway (by its base), the VIN the topic names, what it carries, and the
    field, alert or error name of the topic ('' when it has none)."""

    base: str
    gateway: str
    vin: str
    kind: MessageKind
    name: str = ""


class TopicLayout:
    """The bases onshore subscribes under and the gateway each one belongs to.

    Args:
        root: ``mqtt.topic_root`` ('' for none): ``<root>/<gateway>`` is each gateway's base.
        bases: ``mqtt.bases``: further bases, each one gateway's.
    """

    def __init__(self, root: str, bases: Mapping[str, str]) -> None:
        self.root = root
        self.bases = dict(bases)
        # longest first, so that a base inside another base's namespace is found first
        self._explicit = sorted(((b.split("/"), g) for b, g in self.bases.items()), key=lambda e: -len(e[0]))
        self._root = root.split("/") if root else []

    def filters(self, share_group: str | None) -> list[str]:
        """The subscription filters, as ``$share/<group>/...`` shared subscriptions unless ``share_group`` is None."""
        bases = [*([f"{self.root}/+"] if self.root else []), *self.bases]
        prefix = f"$share/{share_group}/" if share_group else ""
        return [f"{prefix}{base}/{shape}" for base in bases for shape in _SHAPES]

    def errors_topic(self, base: str) -> str:
        """Where refusals of messages under ``base`` are reported."""
        return f"{base}/{ERRORS_TOPIC}"

    def base_of(self, topic: str) -> tuple[str, str, list[str]] | None:
        """``(base, gateway, the levels after the base)`` of ``topic``, or None when it lies under no base."""
        levels = topic.split("/")
        for base, gateway in self._explicit:
            if levels[: len(base)] == base:
                return "/".join(base), gateway, levels[len(base) :]
        n = len(self._root)
        if self._root and len(levels) > n and levels[:n] == self._root and levels[n]:
            return "/".join(levels[: n + 1]), levels[n], levels[n + 1 :]
        return None

    def parse(self, topic: str) -> TopicAddress:
        """The address of a message's topic: kind `MessageKind.UNKNOWN` when it has no shape of the layout.

        Raises:
            InputError (400): the topic lies under no base.
        """
        found = self.base_of(topic)
        if found is None:
            raise InputError("the topic lies under no topic base onshore takes (mqtt.topic_root, mqtt.bases)")
        base, gateway, rest = found
        return _address(base, gateway, rest) or TopicAddress(base, gateway, "", MessageKind.UNKNOWN)


SHAPE_REFUSAL = (
    "the topic has no shape onshore takes under a base: <VIN>/v/<Field>, <VIN>/alerts/<Name>/current or /history, "
    "<VIN>/errors/<Name>, <VIN>/connectivity, onshore/<VIN>/batch"
)


def gateway_address(layout: TopicLayout, topic: str, gateways: frozenset[str]) -> TopicAddress:
    """The address of a message's topic, of a shape the layout reads, under a configured gateway's base.

    Raises:
        InputError (400): the topic lies under no base, or has no shape onshore takes (`SHAPE_REFUSAL`).
        ForbiddenError (403): the topic names a gateway that is not configured.
    """
    return check_address(layout.parse(topic), gateways)


def check_address(address: TopicAddress, gateways: frozenset[str]) -> TopicAddress:
    """``address`` when it has a shape onshore takes and names one of ``gateways``; raises as `gateway_address`."""
    if address.kind is MessageKind.UNKNOWN:
        raise InputError(SHAPE_REFUSAL)
    if address.gateway not in gateways:
        raise ForbiddenError(
            "the topic names a gateway that is not configured (a tokens[] entry with role gateway): "
            "`onshore gateway add NAME`"
        )
    return address


def _address(base: str, gateway: str, rest: list[str]) -> TopicAddress | None:
    if len(rest) == 3 and rest[0] == ONSHORE_LEVEL and rest[2] == "batch" and rest[1]:
        return TopicAddress(base, gateway, rest[1], MessageKind.BATCH)
    if not rest or not rest[0] or rest[0] == ONSHORE_LEVEL:
        return None
    vin, shape = rest[0], rest[1:]
    if len(shape) == 2 and shape[0] == "v" and shape[1]:
        return TopicAddress(base, gateway, vin, MessageKind.V, shape[1])
    if len(shape) == 3 and shape[0] == "alerts" and shape[1] and shape[2] in ("current", "history"):
        kind = MessageKind.ALERT_CURRENT if shape[2] == "current" else MessageKind.ALERT_HISTORY
        return TopicAddress(base, gateway, vin, kind, shape[1])
    if len(shape) == 2 and shape[0] == "errors" and shape[1]:
        return TopicAddress(base, gateway, vin, MessageKind.ERRORS, shape[1])
    if shape == ["connectivity"]:
        return TopicAddress(base, gateway, vin, MessageKind.CONNECTIVITY)
    return None
