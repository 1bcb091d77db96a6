"""Clones of a PostgreSQL template database, made one test ahead and dropped behind on a thread of their own.

``CREATE DATABASE ... TEMPLATE`` and ``DROP DATABASE`` take ~0.2-0.3 s each; made on a background thread while the
previous test runs, a test that needs a copy of the template waits for neither.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class PgClones:
    """Databases cloned from ``template`` through ``admin`` (which runs one SQL statement), one kept ready.

    Statements run in order on one thread, so a clone is never made from a template in use and a failure of
    one surfaces at the next `take` or at `close`.
    """

    def __init__(self, admin: Callable[[str], None], template: str) -> None:
        self._admin = admin
        self._template = template
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-clones")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _create(self) -> str:
        name = f"onshore_test_{secrets.token_hex(4)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self._template}")
        return name

    def _drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _raise_failed_drops(self) -> None:
        pending = []
        for drop in self._drops:
            if drop.done():
                drop.result()  # raises the drop's error
            else:
                pending.append(drop)
        self._drops = pending

    def take(self) -> str:
        """A fresh clone of the template (its name); the next one is started at once."""
        self._raise_failed_drops()
        current = self._next or self._pool.submit(self._create)
        self._next = None
        name = current.result(timeout=120)
        self._next = self._pool.submit(self._create)
        return name

    def give_back(self, name: str) -> None:
        """Drop the clone ``name`` in the background."""
        self._drops.append(self._pool.submit(self._drop, name))

    def close(self) -> None:
        """Drop the clone made ahead and wait for every drop; raises the first error."""
        if self._next is not None:
            made = self._next
            self._next = None
            self._drops.append(self._pool.submit(lambda: self._drop(made.result())))
        self._pool.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
        self._drops = []
