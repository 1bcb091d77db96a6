"""Fair shares on MQTT: a message rate per vehicle and per gateway (``mqtt.vehicle_*``, ``mqtt.gateway_*``).

The broker decides who may publish where; it does not stop one vehicle (or one gateway's topics) from flooding
the subscription and crowding out the rest. Each message takes a token of its vehicle's bucket (keyed by the
topic's gateway and VIN, in memory only) and of its gateway's; a message over either rate is refused with 429
``rate_limited``: counted, reported on the error topic without the VIN, and acknowledged, like every refusal, so
it never blocks the subscription. MQTT has no way to ask one publisher to slow down, so what comes over the rate
is not kept: size the rates above what a vehicle really sends (fleet-telemetry's per-field layout sends one
message per field per interval). The buckets are per subscriber process: with N processes in a shared
subscription a vehicle's share is up to N times the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from onshore.config import MqttSettings
from onshore.web.limits import TokenBuckets, take_token


class MessageRates:
    """The token buckets of every vehicle and gateway seen by one subscriber."""

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.vehicles = TokenBuckets(settings.vehicle_rate_per_s, settings.vehicle_burst, clock=clock)
        self.gateways = TokenBuckets(settings.gateway_rate_per_s, settings.gateway_burst, clock=clock)

    def admit(self, gateway: str, vin: str) -> None:
        """Count one message of ``vin`` on ``gateway``'s topics.

        Raises:
            RateLimitedError (429): over ``mqtt.gateway_rate_per_s`` or ``mqtt.vehicle_rate_per_s``.
        """
        take_token(self.gateways, gateway, "mqtt.gateway", "messages")
        take_token(self.vehicles, f"{gateway}\x00{vin.strip().upper()}", "mqtt.vehicle", "messages")
