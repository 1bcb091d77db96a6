"""The one clock of onshore: every "now" in the product is read here, so tests (and replays) can set it.

``now_ms()`` is Unix time in milliseconds (what records, events and rows carry); ``now()`` the same instant as
an aware UTC datetime (what dates, deadlines and validity periods use). ``frozen(at_ms)`` fixes both for the
code inside it; ``tests/test_layout.py`` checks that no other module reads the wall clock. Durations and
timeouts use ``time.monotonic()``, which is not a reading of "now" and stays where it is used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator

_frozen_ms: int | None = None
_lock = threading.Lock()


def now_ms() -> int:
    """The current time, Unix epoch milliseconds (the frozen time inside ``frozen``)."""
    frozen = _frozen_ms
    return int(time.time() * 1000) if frozen is None else frozen


def now() -> dt.datetime:
    """The current time as an aware UTC datetime (millisecond precision)."""
    return dt.datetime.fromtimestamp(now_ms() / 1000, dt.UTC)


@contextlib.contextmanager
def frozen(at_ms: int) -> Iterator[None]:
    """Fix the clock at ``at_ms`` for the duration of the block (every thread sees it); restores it after."""
    global _frozen_ms
    with _lock:
        before, _frozen_ms = _frozen_ms, int(at_ms)
    try:
        yield
    finally:
        with _lock:
            _frozen_ms = before
