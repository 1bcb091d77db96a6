"""Real `onshore serve` processes for tests: started on a loopback port, ready when /v1/health answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
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
) -> subprocess.Popen[bytes]:
    """Start `python -m onshore serve` for ``config`` on ``port`` and wait until it answers /v1/health.

    The child gets this environment (PYTHONPATH included, so it imports this checkout) plus ``env`` and
    ``ONSHORE_CONFIG``. Its stderr (and stdout too with ``both_streams``) is appended to ``log``.

    Raises:
        AssertionError: the server exited or did not answer within ``timeout_s``; the message holds its log's tail.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onshore", "serve", "--config", str(config), "--port", str(port)],
            stdout=out if both_streams else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if both_streams else out,
            env={**os.environ, "ONSHORE_CONFIG": str(config), **(env or {})},
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
