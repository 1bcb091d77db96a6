"""What the MQTT tests share: the real broker, a publisher, messages shaped as fleet-telemetry's MQTT dispatcher
publishes them, and an `onshore mqtt` subscriber running in a thread.

`dispatch` is written from the dispatcher's documented behaviour (one message per datum, the value as JSON;
alerts' current state and history; errors; connectivity), independently of onshore's decoder: tyre sets as the
protobuf names of the tyres that are set, enums by name, 32-bit floats in their shortest form, RFC 3339 times in
whole seconds, no network interface for connectivity.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as paho
import pytest
from google.protobuf.message import Message
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from onshore.config import MqttSettings, Settings, load_settings
from onshore.ingest.fleet_telemetry import schema
from onshore.ingest.mqtt import MqttSubscriber
from onshore.metrics import Metrics
from onshore.runtime import Runtime

BROKER = os.environ.get("ONSHORE_TEST_MQTT", "127.0.0.1:1883")


def broker() -> tuple[str, int]:
    """The test broker's host and port; skipped when it is unreachable, except in CI where that fails."""
    host, _, port = BROKER.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the MQTT broker is required in CI and is not reachable at {BROKER}: {exc}")
        pytest.skip(f"MQTT broker not reachable at {BROKER}: {exc}")
    return host, int(port)


def unique_root() -> str:
    """A topic root no other test (or concurrent run) uses."""
    return f"t{secrets.token_hex(5)}"


def mqtt_settings(config: Any, root: str, **mqtt: Any) -> Settings:
    """The workspace's settings with an ``[mqtt]`` section for the test broker under ``root``."""
    host, port = broker()
    options = {"host": host, "port": port, "topic_root": root, "client_id": f"{root}-1", "session_expiry_s": 60}
    return load_settings(config, env={}, overrides={"mqtt": {**options, **mqtt}})


@contextlib.contextmanager
def publisher(client_id: str = "") -> Iterator[paho.Client]:
    host, port = broker()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish(client: paho.Client, topic: str, payload: bytes, *, correlation: bytes | None = None) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK."""
    properties = None
    if correlation is not None:
        properties = Properties(PacketTypes.PUBLISH)
        properties.CorrelationData = correlation
    client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)


@contextlib.contextmanager
def listening(topic: str) -> Iterator[list[bytes]]:
    """The payloads published to ``topic`` while the block runs."""
    host, port = broker()
    got: list[bytes] = []
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    try:
        yield got
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.contextmanager
def subscribed(settings: Settings, runtime: Runtime, *, metrics: Metrics | None = None) -> Iterator[MqttSubscriber]:
    """An `onshore mqtt` subscriber running in a thread, subscribed; stopped (and its session ended) after."""
    subscriber = MqttSubscriber(
        settings,
        ingest_vehicles=runtime.ingest.ingest_vehicles,
        speaking_for=runtime.vehicles.speaking_for,
        metrics=metrics or runtime.metrics,
    )
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    try:
        assert subscriber.connected.wait(10), "the subscriber did not subscribe"
        yield subscriber
    finally:
        subscriber.stop()
        thread.join(10)
        end_session(subscriber.client_id, settings.mqtt)


def end_session(client_id: str, mqtt: MqttSettings | None = None) -> None:
    """Have the broker (the test broker, or ``mqtt``'s) forget ``client_id``'s session: a clean start, no expiry."""
    host, port = (mqtt.host, mqtt.port) if mqtt is not None else broker()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if mqtt is not None and mqtt.username is not None:
        client.username_pw_set(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None)
    client.connect(host, port, clean_start=True)
    client.disconnect()


def wait_for(condition: Callable[[], Any], timeout_s: float = 10, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {value!r})")
        time.sleep(0.05)


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# fleet-telemetry's MQTT dispatcher, as documented


def _rfc3339(timestamp: Message) -> str:
    return dt.datetime.fromtimestamp(timestamp.seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_value(value: Message) -> bytes:
    case = value.WhichOneof("value")
    if case == "float_value":  # Go writes a float32 in its shortest form
        return np.format_float_positional(np.float32(value.float_value), unique=True, trim="-").encode()
    if case == "location_value":
        plain: Any = {"latitude": value.location_value.latitude, "longitude": value.location_value.longitude}
    elif case == "invalid":
        plain = None
    elif case == "door_value":
        doors = value.door_value
        plain = {k: getattr(doors, k) for k in ("DriverFront", "PassengerFront", "DriverRear", "PassengerRear")}
        plain |= {"TrunkFront": doors.TrunkFront, "TrunkRear": doors.TrunkRear}
    elif case == "time_value":
        t = value.time_value
        plain = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    elif case == "tire_location_value":  # the generic path: the protobuf names of the fields that are set
        plain = {f.name: v for f, v in value.tire_location_value.ListFields()}
    elif case in schema.ENUM_CASES:
        number = getattr(value, case)
        plain = schema.ENUM_CASES[case].get(number, str(number))
    else:
        plain = getattr(value, case)
    return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)  # Go's encoding/json writes a map's keys sorted


def dispatch(kind: schema.RecordType, message: Message, base: str) -> list[tuple[str, bytes]]:
    """The (topic, payload) messages fleet-telemetry's MQTT dispatcher publishes for one record."""
    vin = message.vin
    if kind is schema.RecordType.V:
        return [(f"{base}/{vin}/v/{schema.FIELD_NAMES[d.key]}", _json_value(d.value)) for d in message.data]
    if kind is schema.RecordType.ALERTS:
        shown = [_alert_map(alert) for alert in message.alerts]
        history: dict[str, list[dict[str, Any]]] = {}
        current: dict[str, int] = {}  # the alert that started last, of each name
        for i, alert in enumerate(message.alerts):
            history.setdefault(alert.name, []).append(shown[i])
            best = current.get(alert.name)
            if alert.HasField("started_at") and (
                best is None or alert.started_at.ToMilliseconds() > message.alerts[best].started_at.ToMilliseconds()
            ):
                current[alert.name] = i
        out = [(f"{base}/{vin}/alerts/{name}/current", orjson.dumps(shown[i])) for name, i in current.items()]
        return out + [(f"{base}/{vin}/alerts/{name}/history", orjson.dumps(h)) for name, h in history.items()]
    if kind is schema.RecordType.ERRORS:
        return [
            (
                f"{base}/{vin}/errors/{e.name}",
                orjson.dumps({"Body": e.body, "Tags": dict(e.tags), "CreatedAt": _rfc3339(e.created_at)}),
            )
            for e in message.errors
        ]
    status = schema.CONNECTIVITY_STATUS[message.status]
    event = {"ConnectionId": message.connection_id, "Status": status, "CreatedAt": _rfc3339(message.created_at)}
    return [(f"{base}/{vin}/connectivity", orjson.dumps(event))]


def _alert_map(alert: Message) -> dict[str, Any]:
    shown: dict[str, Any] = {"StartedAt": _rfc3339(alert.started_at)} if alert.HasField("started_at") else {}
    if alert.HasField("ended_at"):
        shown["EndedAt"] = _rfc3339(alert.ended_at)
    shown["Audiences"] = [schema.AUDIENCES[a] for a in alert.audiences] or None
    return shown


def start_mqtt(config: Any, client_id: str, log: Any, timeout_s: float = 30) -> subprocess.Popen[bytes]:
    """Start `python -m onshore mqtt` for ``config`` (this checkout: the child inherits PYTHONPATH) and wait until
    it has subscribed. Its stderr is appended to ``log``."""
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onshore", "mqtt", "-c", str(config), "--client-id", client_id],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    deadline = time.monotonic() + timeout_s
    while "subscribed to" not in log.read_bytes()[start:].decode(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise AssertionError(f"onshore mqtt did not subscribe: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return proc
