"""Fair shares: no client can hold the server with slow bodies, floods of requests or piles of open uploads.

- `read_body`: a request body read with a size limit and a deadline for the whole body, before any processing
  place is taken; a client that goes away mid-body is one log line, not a traceback.
- `VehicleLimits`: per vehicle, a request rate (token bucket) and a cap on uploads in progress; over either,
  429 with ``Retry-After``. Keyed by any string, so other transports (MQTT, NATS gateways) can reuse them.
- `BodyGuard`: the same size limit and deadline for the JSON bodies FastAPI reads before a route runs
  (``server.max_body_bytes``, ``server.body_timeout_s``); ingest and frames read their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator

import orjson
from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onshore.auth import Principal, Role
from onshore.config import LimitSettings
from onshore.errors import ClientDisconnectedError, PayloadTooLargeError, RateLimitedError, RequestTimeoutError

logger = logging.getLogger("onshore.limits")


async def read_body(request: Request, limit: int, setting: str, timeout_s: float, timeout_setting: str) -> bytes:
    """The request body, refused as soon as it (or its declared length) passes ``limit`` bytes or takes longer
    than ``timeout_s`` seconds to arrive.

    Raises:
        PayloadTooLargeError (413): over ``limit`` (named by ``setting``).
        RequestTimeoutError (408): not all there within ``timeout_s`` (named by ``timeout_setting``).
        ClientDisconnectedError: the client went away mid-body (logged as one line).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body is {declared} bytes; the limit is {limit} ({setting})")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"body exceeds {limit} bytes ({setting})")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"the body did not arrive within {timeout_s:g} s ({timeout_setting}); {size} bytes came: "
            "send it faster or in smaller parts"
        ) from None
    except ClientDisconnect:
        logger.info("client disconnected mid-body: %s %s after %d bytes", request.method, request.url.path, size)
        raise ClientDisconnectedError(f"the client disconnected after {size} bytes of the body") from None
    return b"".join(chunks)


class TokenBuckets:
    """A token bucket per key: ``rate_per_s`` tokens a second, at most ``burst`` saved up. Thread-safe.

    Buckets that have filled up again are forgotten once more than ``max_keys`` are held, so memory stays
    bounded by the clients active in the last ``burst / rate_per_s`` seconds.
    """

    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when there was one, else the seconds until there is."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > self.max_keys:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


class InFlight:
    """How many requests each key has in progress, capped at ``cap``. Thread-safe."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, key: str, what: str = "requests") -> Iterator[None]:
        """Hold one place of ``key`` for the ``with`` block.

        Raises:
            RateLimitedError (429): ``key`` already holds ``cap`` places.
        """
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.cap:
                raise RateLimitedError(
                    f"this client already has {held} {what} in progress (the cap is {self.cap}); "
                    "wait for one to finish, then retry after the Retry-After seconds",
                    retry_after_s=1,
                )
            self._held[key] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held[key] - 1
                if left:
                    self._held[key] = left
                else:
                    del self._held[key]

    def held(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)


class VehicleLimits:
    """The fair share of one vehicle and of one gateway (``limits.*``): request rate and uploads in progress.

    A gateway speaks for many vehicles, so it has a share of its own (larger, ``limits.gateway_*``): one fleet
    back-end cannot starve the others, and each of its vehicles still counts against its own share.
    """

    def __init__(self, settings: LimitSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.rate = TokenBuckets(settings.vehicle_rate_per_s, settings.vehicle_burst, clock=clock)
        self.uploads = InFlight(settings.vehicle_max_in_flight)
        self.gateway_rate = TokenBuckets(settings.gateway_rate_per_s, settings.gateway_burst, clock=clock)
        self.gateway_uploads = InFlight(settings.gateway_max_in_flight)

    def admit_gateway(self, name: str) -> None:
        """Count one request of gateway ``name``.

        Raises:
            RateLimitedError (429): over ``limits.gateway_rate_per_s`` (after ``limits.gateway_burst``).
        """
        take_token(self.gateway_rate, name, "limits.gateway", "requests")

    def upload_place(self, principal: Principal) -> contextlib.AbstractContextManager[None]:
        """The upload place a request of ``principal`` holds: its vehicle's, or its gateway's (429 when full)."""
        if principal.vehicle is not None and principal.role is Role.VEHICLE:
            return self.uploading(principal.vehicle.ref)
        if principal.role is Role.GATEWAY:
            return self.gateway_uploading(principal.name)
        return contextlib.nullcontext()

    def gateway_uploading(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Hold one of gateway ``name``'s ``limits.gateway_max_in_flight`` upload places (429 when all are held)."""
        return self.gateway_uploads.hold(name, "uploads (limits.gateway_max_in_flight)")

    def admit(self, key: str) -> None:
        """Count one request of vehicle ``key``.

        Raises:
            RateLimitedError (429): over ``limits.vehicle_rate_per_s`` (after ``limits.vehicle_burst``).
        """
        take_token(self.rate, key, "limits.vehicle", "requests")

    def uploading(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold one of vehicle ``key``'s ``limits.vehicle_max_in_flight`` upload places (429 when all are held)."""
        return self.uploads.hold(key, "uploads (limits.vehicle_max_in_flight)")


def take_token(buckets: TokenBuckets, key: str, settings: str, what: str) -> None:
    """Take one token of ``key``'s bucket; over its rate, a 429 naming the ``<settings>_rate_per_s`` and
    ``<settings>_burst`` settings (e.g. ``limits.vehicle``) and what is counted (``requests``, ``messages``)."""
    wait = buckets.take(key)
    if wait > 0:
        who = settings.rsplit(".", 1)[-1]
        raise RateLimitedError(
            f"this {who} sends more than {buckets.rate:g} {what} a second ({settings}_rate_per_s, burst "
            f"{settings}_burst = {buckets.burst:g}); retry after the Retry-After seconds",
            retry_after_s=math.ceil(wait),
        )


class BodyGuard:
    """ASGI middleware: bodies of routes other than ``exempt`` paths are capped in size and in arrival time.

    A declared length over ``max_bytes`` is answered 413 before anything is read; a body that grows past it,
    or is not complete ``timeout_s`` seconds after the request began, fails the read with 413 or 408 (FastAPI
    passes an `HTTPException` raised while it reads the body through to the app's handler).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float, exempt: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, "payload_too_large", self._too_large())
            return
        deadline = time.monotonic() + self.timeout_s
        size = 0

        async def guarded() -> Message:
            nonlocal size
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(left, 0.001)):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408, f"the body did not arrive within {self.timeout_s:g} s (server.body_timeout_s)"
                ) from None
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, guarded, send)

    def _too_large(self) -> str:
        return f"body exceeds {self.max_bytes} bytes (server.max_body_bytes)"


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
