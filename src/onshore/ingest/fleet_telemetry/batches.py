"""Decoded messages to one record list per vehicle: what the HTTP and MQTT adapters hand to the ingest service.

A request may hold many messages (a JSON array, NDJSON, or several MQTT messages); each vehicle becomes its own
batch, with its messages' records in the order they came, so that one vehicle's records never mix with another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from onshore.ingest.fleet_telemetry.records import VehicleMessage
from onshore.model import Vehicle
from onshore.pipeline.admit import WireRecord


@dataclass
class VehicleRecords:
    """One vehicle's records of a request, and which of the request's messages they came from."""

    vehicle: Vehicle
    records: list[WireRecord] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)


def by_vehicle(messages: Sequence[VehicleMessage], vehicles: Sequence[Vehicle]) -> list[VehicleRecords]:
    """Group ``messages`` by the vehicle each one is for (``vehicles[i]`` is message ``i``'s), first seen first."""
    grouped: dict[tuple[str, str], VehicleRecords] = {}
    for message, vehicle in zip(messages, vehicles, strict=True):
        batch = grouped.setdefault((vehicle.region, vehicle.ref), VehicleRecords(vehicle))
        batch.records.extend(message.records)
        batch.messages.append(message.index)
    return list(grouped.values())
