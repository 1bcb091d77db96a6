"""Distributed mode against the real NATS JetStream (127.0.0.1:4222, or ``$ONSHORE_TEST_NATS``).

Every test gets its own name prefix (streams, consumers, buckets), removed afterwards, so tests run beside other
tests on the same server. A missing NATS skips these tests locally and fails them in CI, as PostgreSQL does.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest

from onshore.config import Settings, load_settings
from onshore.runtime import Runtime
from onshore.workspace import IssuedApiToken, init_workspace

NATS_URL = os.environ.get("ONSHORE_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The test NATS server's URL; skipped when it is unreachable, except in CI where that fails."""
    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=3):
            pass
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS JetStream is required in CI and is not reachable at {NATS_URL}: {exc}")
        pytest.skip(f"NATS not reachable at {NATS_URL}: {exc}")
    return NATS_URL


async def _remove_prefix(url: str, prefix: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name.startswith((f"{prefix}-", f"KV_{prefix}-", f"OBJ_{prefix}-")):
                await js.delete_stream(name)
    finally:
        await nc.close()


@pytest.fixture
def bus_prefix(nats_url: str) -> Iterator[str]:
    """A name prefix of this test's own; its streams and buckets are deleted afterwards."""
    prefix = f"t{secrets.token_hex(4)}"
    yield prefix
    asyncio.run(_remove_prefix(nats_url, prefix))


def bus_toml(url: str, prefix: str, **extra: object) -> str:
    """A ``[bus]`` table for distributed mode with short timers (redelivery within seconds)."""
    values = {"kind": "nats", "url": url, "prefix": prefix, "ack_wait_s": 2, "nak_delay_s": 0.5, **extra}
    lines = [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in values.items()]
    return "\n[bus]\n" + "\n".join(lines) + "\n"


@dataclass
class Distributed:
    """A workspace whose config picks NATS: gateways (`onshore serve`) and workers run as real processes."""

    folder: Path
    config: Path
    tokens: dict[str, IssuedApiToken]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def settings(self) -> Settings:
        return load_settings(self.config, env={})

    def runtime(self) -> Runtime:
        return Runtime(self.settings())

    def worker(self, log: Path, *args: str) -> subprocess.Popen[bytes]:
        """Start `onshore worker --region cn` (output appended to ``log``)."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "onshore", "worker", "--region", "cn", "--config", str(self.config), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ONSHORE_CONFIG": str(self.config)},
            )
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def distributed_workspace(folder: Path, url: str, prefix: str, *, record_store: str | None = None) -> Distributed:
    """A fresh workspace (stores at head) with ``[bus] kind = "nats"``; cn on ``record_store`` when given."""
    config, issued = init_workspace(folder)
    text = config.read_text(encoding="utf-8")
    if record_store is not None:
        sqlite_cn = 'record_store = "sqlite:///onshore-data/cn/records.sqlite"'
        assert sqlite_cn in text
        text = text.replace(sqlite_cn, f'record_store = "{record_store}"')
    config.write_text(text + bus_toml(url, prefix), encoding="utf-8")
    Runtime(load_settings(config, env={}), create=True).close()
    return Distributed(folder, config, {t.name: t for t in issued})


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    """Poll ``predicate()`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
