"""What `bench/scale.py` measures with and sends: CPU seconds of processes and of the machine, the plain NATS and
PostgreSQL baseline, fleet-telemetry payloads and MQTT batches built from the simulated fleet's records.

CPU comes from Linux ``/proc``: a process's ``utime + stime`` (``/proc/PID/stat``), the machine's busy share
(``/proc/stat``), and the services' processes found by name (``postgres``, ``nats-server``: every process of that
name, so another user of the same server is counted too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import paho.mqtt.client as paho
from google.protobuf.message import Message
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from onshore.ingest.fleet_telemetry import schema
from onshore.ingest.jetstream import RegionNames
from onshore.sim.fleet import FleetSimulator, SimulatedVehicle
from onshore.storage import sql

_TICK_S = os.sysconf("SC_CLK_TCK")
SERVICES = ("postgres", "nats-server")
_SHIFT_STATE_CASE = next(case for case, names in schema.ENUM_CASES.items() if "ShiftStateD" in names.values())


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK_S  # fields 14 and 15 of proc(5), counted after the name


def service_cpu_s() -> dict[str, float]:
    """CPU seconds so far of every process of each name in `SERVICES`, by PID (``name:pid``)."""
    out: dict[str, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            name = Path(entry.path, "comm").read_text(encoding="ascii").strip()
        except OSError:
            continue
        if name in SERVICES:
            out[f"{name}:{entry.name}"] = process_cpu_s(int(entry.name))
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot (``/proc/stat``; idle and iowait are not busy)."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


@dataclass
class CpuWindow:
    """CPU used between `start` and `stop`: by given processes, by the services, and the machine's busy share."""

    pids: list[int]
    started_s: float = 0.0
    seconds: float = 0.0
    process_s: float = 0.0
    own_s: float = 0.0  # this process (the bench: its clients and pollers)
    services_s: dict[str, float] | None = None
    busy_share: float = 0.0

    def start(self) -> CpuWindow:
        self._procs = {pid: process_cpu_s(pid) for pid in self.pids}
        self._own = process_cpu_s(os.getpid())
        self._services = service_cpu_s()
        self._machine = _machine_ticks()
        self.started_s = time.perf_counter()
        return self

    def stop(self) -> CpuWindow:
        self.seconds = time.perf_counter() - self.started_s
        self.process_s = sum(process_cpu_s(pid) - before for pid, before in self._procs.items())
        self.own_s = process_cpu_s(os.getpid()) - self._own
        services: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
        for key, now in service_cpu_s().items():
            services[key.split(":")[0]] += now - self._services.get(key, 0.0)
        self.services_s = services
        busy, total = _machine_ticks()
        self.busy_share = (busy - self._machine[0]) / max(1, total - self._machine[1])
        return self

    def cores_used(self, name: str) -> dict[str, float]:
        """Cores used on average: by the processes (as ``name``), the services, this bench, and everything else."""
        assert self.services_s is not None
        used = {name: self.process_s, **self.services_s, "bench": self.own_s}
        used["other"] = max(0.0, self.busy_share * (os.cpu_count() or 1) * self.seconds - sum(used.values()))
        return {key: round(value / self.seconds, 2) for key, value in used.items()}


def per_1k(seconds: float, records: int) -> float:
    return round(seconds / max(1, records) * 1000, 4)


class TransactionTimer:
    """Adds up how long the region's write lock is held: from the moment a write transaction of a runtime's region
    stores takes it (`region_write_lock`: at the first statement, or, for an ingest, once its rows are in) to the
    end of the transaction. Every writer of the region queues on that lock."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0

    def __call__(self, runtime: Any) -> None:
        take = sql.region_write_lock

        def timed_lock(conn: Any, region: str) -> None:
            take(conn, region)
            held = conn.info.get("bench_locked_at")
            if held is None or held[0] is not conn.get_transaction():  # the first time in this transaction
                conn.info["bench_locked_at"] = (conn.get_transaction(), time.perf_counter())

        sql.region_write_lock = timed_lock  # type: ignore[assignment]
        for region in runtime.regions.values():
            region.store.transaction = self._timed(region.store.transaction)

    def _timed(self, transaction: Any) -> Any:
        @contextlib.contextmanager
        def timed(what: str, **options: Any) -> Iterator[Any]:
            info: dict[str, Any] = {}
            current = None
            try:
                with transaction(what, **options) as conn:
                    info, current = conn.info, conn.get_transaction()
                    yield conn
            finally:
                held = info.pop("bench_locked_at", None)
                if held is not None and held[0] is current:
                    self.seconds += time.perf_counter() - held[1]
                    self.count += 1

        return timed


def split_cost(per_1k_large: float, batch_large: float, per_1k_small: float, batch_small: float) -> dict[str, float]:
    """CPU per record = per_record + per_batch / batch size, solved from two batch sizes (milliseconds)."""
    large, small = per_1k_large / 1000, per_1k_small / 1000
    per_batch = (small - large) / (1 / batch_small - 1 / batch_large)
    per_record = large - per_batch / batch_large
    return {"per_batch_ms": round(per_batch * 1000, 3), "per_record_ms": round(per_record * 1000, 4)}


def bottleneck(two: dict[str, Any], cores: int) -> str:
    shares = ", ".join(f"{name} {value:.2f}" for name, value in two["cores_used"].items())
    if two["busy_share"] >= 0.9:
        return f"cpu: all {cores} cores {two['busy_share']:.0%} busy during the two-worker drain (cores used: {shares})"
    return f"not the cpu: {two['busy_share']:.0%} of {cores} cores busy during the two-worker drain (cores: {shares})"


async def remove_bus_prefix(url: str, prefix: str, regions: Iterable[str]) -> None:
    """Delete the streams and buckets `JetStreamLink` made under ``prefix`` for ``regions`` (absent ones too)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for region in regions:
            names = RegionNames.of(prefix, region)
            for stream in (names.stream, f"KV_{names.receipts}", f"OBJ_{names.payloads}"):
                with contextlib.suppress(nats.errors.Error):
                    await js.delete_stream(stream)
    finally:
        await nc.close()


async def nats_baseline(url: str, prefix: str, bodies: list[tuple[str, bytes]], insert: Any) -> tuple[float, float]:
    """The bus's work without onshore: publish every body to a work-queue stream (one confirmed publish at a time,
    as a gateway's request does), then one consumer fetches 8 at a time, hands each to ``insert(vin, body)`` and
    acknowledges it. Returns (publish seconds, consume-and-insert seconds)."""
    nc = await nats.connect(url)
    stream, subject = f"{prefix}-baseline", f"{prefix}.baseline"
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name=stream, subjects=[subject], retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE
            )
        )
        started = time.perf_counter()
        for vin, body in bodies:
            await js.publish(subject, body, stream=stream, headers={"vin": vin})
        published = time.perf_counter() - started
        subscription = await js.pull_subscribe(subject, durable=f"{prefix}-baseline", stream=stream)
        left = len(bodies)
        started = time.perf_counter()
        while left:
            for message in await subscription.fetch(8, timeout=5):
                insert((message.headers or {})["vin"], message.data)
                await message.ack()
                left -= 1
        return published, time.perf_counter() - started
    finally:
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()


def _set_value(value: Message, signal: str, plain: Any) -> None:
    """A simulated record's value in the case fleet-telemetry sends that field in."""
    if isinstance(plain, dict):
        value.location_value.latitude, value.location_value.longitude = plain["latitude"], plain["longitude"]
    elif isinstance(plain, bool):
        value.boolean_value = plain
    elif signal == "Gear":
        names = schema.ENUM_CASES[_SHIFT_STATE_CASE]
        setattr(value, _SHIFT_STATE_CASE, next(n for n, name in names.items() if name == plain))
    elif isinstance(plain, str):
        value.string_value = plain
    elif isinstance(plain, int):
        value.int_value = plain
    else:
        value.double_value = plain


def fleet_telemetry_payloads(fleet: FleetSimulator, n_records: int) -> list[tuple[SimulatedVehicle, bytes, int]]:
    """At least ``n_records`` records as fleet-telemetry ``V`` payloads, one per vehicle and tick (what a vehicle
    sends each interval: the fields that changed), serialised; with their record counts."""
    out: list[tuple[SimulatedVehicle, bytes, int]] = []
    produced = 0
    while produced < n_records:
        for vehicle, records in fleet.tick():
            if not records:
                continue
            payload = schema.Payload(vin=vehicle.vin)
            payload.created_at.FromMilliseconds(records[0]["ts"])
            for record in records:
                datum = payload.data.add()
                datum.key = schema.FIELD_NUMBERS[record["signal"]]
                _set_value(datum.value, record["signal"], record["value"])
            out.append((vehicle, payload.SerializeToString(), len(records)))
            produced += len(records)
    return out


def publish_batches(host: str, port: int, batches: list[tuple[str, bytes]]) -> float:
    """Publish every (topic, NDJSON batch) at QoS 1 and wait for all PUBACKs; returns the seconds it took."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(64)
    client.connect(host, port)
    client.loop_start()
    properties = Properties(PacketTypes.PUBLISH)
    properties.ContentType = "application/x-ndjson"
    try:
        started = time.perf_counter()
        infos = [client.publish(topic, body, qos=1, properties=properties) for topic, body in batches]
        for info in infos:
            info.wait_for_publish(60)
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for_log(log: Path, text: str, timeout_s: float, proc: Any = None) -> None:
    """Wait until ``text`` is in ``log`` (a process's output).

    Raises:
        RuntimeError: not there within ``timeout_s``, or ``proc`` exited first (the log's tail in the message).
    """
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text(errors="replace")):
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{text!r} did not appear in {log.name}: {tail}")
        time.sleep(0.02)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
