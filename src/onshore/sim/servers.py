"""Real `onshore serve` processes on loopback, for the tests and the benchmarks: start, stop, measure.

The tests (`tests/servers.py` re-exports `start_server`) and `bench/` drive the same helpers, so a server is
started one way everywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx


def start_server(
    config: Path,
    port: int,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    both_streams: bool = False,
    timeout_s: float = 60,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `python -m onshore serve` for ``config`` on ``port`` and wait until it answers /v1/health.

    The child gets this environment (PYTHONPATH included, so it imports this checkout) plus ``env`` and
    ``ONSHORE_CONFIG``. Its stderr (and stdout too with ``both_streams``) is appended to ``log``. ``preexec_fn``
    runs in the child before it starts Python (resource limits for fault injection).

    Raises:
        AssertionError: the server exited or did not answer within ``timeout_s``; the message holds its log's tail.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onshore", "serve", "--config", str(config), "--port", str(port)],
            stdout=out if both_streams else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if both_streams else out,
            env={**os.environ, "ONSHORE_CONFIG": str(config), **(env or {})},
            preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits, no threads in the parent's child
        )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise AssertionError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes], *, timeout_s: float = 20) -> None:
    """Stop a server gracefully (SIGTERM), or kill it when it does not exit within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` in bytes (Linux ``/proc``); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0
