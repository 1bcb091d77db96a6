"""Server logging that holds no personal data: redaction on every handler, an access log without query strings.

`log_config` is the ``logging.config`` dictionary the server runs under (``onshore serve`` and `ServerThread`):
every handler (uvicorn's, onshore's and the root's) carries `RedactingFilter`, which masks VINs, positions and
tokens (`onshore.identifiers.redact`) in the message, its arguments and any traceback. uvicorn's own access
log is off: it writes the request line with its query string. `AccessLogMiddleware` writes one line per request
instead, with the method, the path (never the query string), the status and the duration, and nothing about
the client (an IP address is personal data).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onshore.identifiers import redact

ACCESS_LOGGER = "onshore.access"
_SAFE_ARGS = (str, int, float, bool, type(None))


class RedactingFilter(logging.Filter):
    """Masks VINs, positions and tokens in every record it sees (message, arguments, traceback, stack)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, _SAFE_ARGS) for a in args):
            # keep the shape: formatters such as uvicorn's unpack the arguments themselves
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        else:
            record.msg = redact(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """The logging configuration of the server: one stderr handler per format, each behind `RedactingFilter`."""
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
            "plain": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            # off: it logs the request line with its query string (see AccessLogMiddleware)
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "onshore": {"handlers": ["default"], "level": upper, "propagate": False},
        },
        "root": {"handlers": ["plain"], "level": "WARNING"},
    }


class AccessLogMiddleware:
    """One line per HTTP request on ``onshore.access``: ``METHOD /path STATUS DURATIONms``.

    The query string is never written (it may hold parameters a client should not have put there), nor the
    client's address; the path goes through the same redaction as every other line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                millis = (time.perf_counter() - start) * 1000
                self.logger.info("%s %s %d %.1fms", scope["method"], scope["path"], status, millis)
