"""Fault scenarios of the brokers between onshore's processes, each with a private broker (`brokers`):

* ``nats_broker_restart``: a gateway (`onshore serve`, ``[bus] kind = "nats"``) and a worker over SQLite, under a
  stream of records; the nats-server is SIGKILLed, then SIGTERMed, and each time started again on the same port
  and JetStream store. While it is down the gateway answers 503 with ``Retry-After``; afterwards every batch it
  acknowledged (202) is stored exactly once.
* ``worker_sigkill``: the same deployment; the worker is SIGKILLed twice mid-stream and started again: what it
  had fetched and not acknowledged is delivered again, and a batch it had committed counts as done, never
  stored twice.
* ``mosquitto_restart``: `onshore mqtt` subscribed to a Mosquitto with persistence; a QoS 1 publisher sends
  onshore batches (``<base>/onshore/<VIN>/batch``) and resends each until the broker's PUBACK; the broker is
  stopped (SIGTERM: it writes its persistence) and started again twice. The subscriber reconnects to its
  session; every acknowledged message is stored once. (A SIGKILLed Mosquitto loses what it acknowledged since
  its last autosave: the broker's durability, not onshore's, so it is not injected.)

Each ends in `settle`, as the other scenarios do, after the worker or subscriber has drained what was
acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from onshore.sim.robustness.brokers import PrivateBroker, private_mosquitto, private_nats
from onshore.sim.robustness.faults import (
    Deployment,
    FaultOutcome,
    RecordStream,
    make_deployment,
    serving,
    settle,
    stream_records,
    streaming,
    wait_for,
)

if TYPE_CHECKING:
    from onshore.sim.robustness.scenarios import FaultContext

_BATCH = 50


class Process:
    """An onshore process (a worker, `onshore mqtt`) of a deployment, its output in the deployment's logs."""

    def __init__(self, deployment: Deployment, name: str, args: list[str], ready: str | None = None) -> None:
        self.deployment = deployment
        self.name = name
        self.args = args
        self.ready = ready  # a line of its log that says it is ready, or None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        log = self.deployment.folder / f"{self.name}-{len(self.deployment.logs)}.log"
        self.deployment.logs.append(log)
        env = {**os.environ, "ONSHORE_CONFIG": str(self.deployment.config), **self.deployment.env}
        command = [sys.executable, "-m", "onshore", *self.args, "--config", str(self.deployment.config)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        ready = self.ready
        if ready is not None and not wait_for(lambda: ready in log.read_text(errors="replace"), timeout_s, 0.1):
            self.stop()
            raise AssertionError(f"{self.name} did not start: {log.read_text(errors='replace')[-1500:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _acked_ids(streams: list[RecordStream]) -> set[str]:
    return {m for s in streams for batch in s.acknowledged for m in batch}


def _drain(deployment: Deployment, streams: list[RecordStream], outcome: FaultOutcome, timeout_s: float = 30) -> None:
    """Finish the streams, then wait until every acknowledged record is stored (the worker or subscriber drains)."""
    for stream in streams:
        stream.finish()
    acked = _acked_ids(streams)
    if not wait_for(lambda: acked <= {m for _ref, m in deployment.stored()}, timeout_s, 0.5):
        outcome.notes.append(f"not every acknowledged record was stored within {timeout_s:g} s")


def _more(streams: list[RecordStream], batches: int, timeout_s: float = 60) -> bool:
    target = sum(s.acknowledged_batches() for s in streams) + batches
    return wait_for(lambda: sum(s.acknowledged_batches() for s in streams) >= target, timeout_s)


def _distributed(
    folder: Path, nats_binary: str, name: str, inject: Callable[[PrivateBroker, Process, list[RecordStream]], int]
) -> FaultOutcome:
    """A gateway and a worker on a private nats-server, streaming; ``inject`` breaks something (returns the
    number of faults); then drain and settle."""
    outcome = FaultOutcome(name)
    with private_nats(nats_binary, folder) as nats:
        deployment = make_deployment(folder / "workspace")
        with deployment.config.open("a", encoding="utf-8") as config:
            config.write(
                f'\n[bus]\nkind = "nats"\nurl = "nats://127.0.0.1:{nats.port}"\nprefix = "fz"\n'
                "ack_wait_s = 2\nnak_delay_s = 0.5\npublish_timeout_s = 1\n"
            )
        worker = Process(deployment, "worker", ["worker", "--region", "cn"], ready="consuming")
        with serving(deployment), running(worker), streaming(deployment, batch=_BATCH) as streams:
            _more(streams, 3)
            outcome.faults_injected += inject(nats, worker, streams)
            _more(streams, 3)
            _drain(deployment, streams, outcome)
            worker.stop()
            return settle(deployment, streams, outcome)


def _refused(streams: list[RecordStream]) -> int:
    return sum(s.counts.unavailable for s in streams)


def _restart_nats(nats: PrivateBroker, _worker: Process, streams: list[RecordStream]) -> int:
    for signum in (signal.SIGKILL, signal.SIGTERM):
        before = _refused(streams)
        nats.kill(signum)
        wait_for(lambda: _refused(streams) > before, 20)  # noqa: B023 - waited for here; the gateway says 503
        nats.start()
        _more(streams, 2)
    return 2


def _kill_worker(_nats: PrivateBroker, worker: Process, streams: list[RecordStream]) -> int:
    for _kill in range(2):
        _more(streams, 2)
        worker.kill()
        time.sleep(0.5)  # the stream goes on: the gateway publishes, nothing consumes
        worker.start()
    return 2


def nats_broker_restart(ctx: FaultContext) -> FaultOutcome:
    return _distributed(ctx.folder / "nats", ctx.services["nats_server"], "nats_broker_restart", _restart_nats)


def worker_sigkill(ctx: FaultContext) -> FaultOutcome:
    return _distributed(ctx.folder / "worker", ctx.services["nats_server"], "worker_sigkill", _kill_worker)


class MqttStream(RecordStream):
    """A gateway publishing one vehicle's batches to ``<base>/onshore/<VIN>/batch`` at QoS 1, each resent until
    the broker acknowledges it (PUBACK). Acknowledged is what the broker acknowledged."""

    def __init__(self, deployment: Deployment, index: int, port: int, base: str, *, batch: int = _BATCH) -> None:
        super().__init__(deployment, index, batch=batch, prefix="m")
        self.port = port
        self.topic = f"{base}/onshore/{deployment.vins[index]}/batch"

    def _run(self) -> None:
        import orjson
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fz-pub-{self.prefix}", protocol=paho.MQTTv5)
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        seq = 0
        try:
            while not self._stop.is_set() and not self._draining.is_set():
                ids, records, positions = stream_records(self.prefix, seq, self.batch)
                self.positions += positions
                seq += 1
                self.sent.append(ids)
                payload = orjson.dumps(records)
                while not self._stop.is_set():  # this message until the broker acknowledges it
                    try:
                        info = client.publish(self.topic, payload, qos=1)
                        info.wait_for_publish(3)
                        if info.is_published():
                            self.acknowledged.append(ids)
                            time.sleep(0.05)  # a steady gateway, not a flood: the scenario is the restart
                            break
                    except (RuntimeError, ValueError):  # not connected: the client reconnects
                        pass
                    self.counts.no_answer += 1
                    time.sleep(0.2)
        finally:
            client.disconnect()
            client.loop_stop()


def mosquitto_restart(ctx: FaultContext) -> FaultOutcome:
    folder = ctx.folder / "mosquitto"
    outcome = FaultOutcome("mosquitto_restart")
    with private_mosquitto(ctx.services["mosquitto"], folder) as broker:
        deployment = make_deployment(folder / "workspace", gateway="gateway")
        with deployment.config.open("a", encoding="utf-8") as config:
            config.write(
                f'\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ntopic_root = "fz"\nclient_id = "fz-mqtt-1"\n'
                'session_expiry_s = 120\nflush_ms = 20\nshare_group = ""\n'
            )
        subscriber = Process(deployment, "mqtt", ["mqtt"], ready="subscribed to")
        streams: list[RecordStream] = [
            MqttStream(deployment, i, broker.port, "fz/gateway") for i in range(len(deployment.vins))
        ]
        with running(subscriber):
            for stream in streams:
                stream.start()
            try:
                _more(streams, 3)
                for _restart in range(2):
                    broker.kill(signal.SIGTERM)
                    outcome.faults_injected += 1
                    time.sleep(0.5)
                    broker.start()
                    _more(streams, 3)
                _drain(deployment, streams, outcome)
            finally:
                for stream in streams:
                    stream._stop.set()
        return settle(deployment, streams, outcome)
