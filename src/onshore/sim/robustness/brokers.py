"""Private brokers for fault injection: a nats-server or a Mosquitto of a scenario's own, on a free loopback port
with its store in the scenario's folder, that can be killed and started again on the same port and store.

The brokers the deployment's other users share (NATS on 4222, Mosquitto on 1883) are never touched: a scenario
that restarts a broker restarts its own. `BROKERS` names the binaries; `find_broker` says where one is (the
``nats_server`` and ``mosquitto`` services of `FaultContext`).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from onshore.web.server import free_port

BROKERS = {"nats_server": ("nats-server", "/usr/sbin/nats-server"), "mosquitto": ("mosquitto", "/usr/sbin/mosquitto")}


def find_broker(service: str) -> str | None:
    """The path of the broker binary of ``service`` (``nats_server``, ``mosquitto``), or None when absent."""
    name, fallback = BROKERS[service]
    found = shutil.which(name) or fallback
    return found if Path(found).exists() else None


@dataclass
class PrivateBroker:
    """One broker process of a scenario's own: `start`, `kill` (SIGKILL or SIGTERM), `start` again."""

    command: list[str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self, timeout_s: float = 15) -> None:
        """Start the broker and wait until its port takes connections."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(
                        f"the broker did not start: {self.log.read_text(errors='replace')[-1500:]}"
                    ) from None
                time.sleep(0.05)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Stop the broker with ``signum`` and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        self.kill(signal.SIGKILL)


@contextlib.contextmanager
def private_nats(binary: str, folder: Path) -> Iterator[PrivateBroker]:
    """A JetStream nats-server on a free loopback port, its store in ``folder/nats``; gone afterwards."""
    store = folder / "nats"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    broker = PrivateBroker(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)], port, folder / "nats.log"
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def private_mosquitto(binary: str, folder: Path) -> Iterator[PrivateBroker]:
    """A Mosquitto on a free loopback port with persistence in ``folder/mosquitto`` (sessions and the messages
    queued for them survive a restart); gone afterwards."""
    store = folder / "mosquitto"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = store / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {store}/\n"
        # run as root, mosquitto would drop to its own user, which may not reach a private temporary folder
        "autosave_interval 1\nmax_queued_messages 0\nuser root\n",
        encoding="utf-8",
    )
    broker = PrivateBroker([binary, "-c", str(config)], port, folder / "mosquitto.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
