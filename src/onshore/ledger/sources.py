"""Where the auditor's verifier reads a log from: the onshore API or an exported bundle, never the operator's stores.

``LedgerSource`` is what ``verify_ledger`` reads through: ``HttpLedgerSource`` (``/v1/ledger/{region}/...`` with an
auditor or officer token) and ``BundleLedgerSource`` (a file written by ``onshore ledger export``, without proofs).
``LedgerSourceError`` means the source cannot be read at all; a malformed answer is a ``ProofError`` the verdict
records.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from onshore.errors import LedgerSourceError
from onshore.ledger.bundle import BUNDLE_FORMAT
from onshore.ledger.merkle import ProofError

PAGE_SIZE = 10_000


@dataclass(frozen=True)
class CheckpointNotes:
    """What a source offers as tree heads: the current checkpoint and the latest witnessed one (if any)."""

    current: str
    witnessed: str | None = None


class LedgerSource(Protocol):
    """Where the verifier reads a log from. Proof methods return None when the source has no proofs."""

    region: str

    def describe(self) -> str:
        """Where the log comes from, for the verdict (a URL or a file)."""
        ...

    def checkpoints(self) -> CheckpointNotes:
        """The current signed checkpoint note and the latest witnessed one."""
        ...

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)``; ``end - start <= PAGE_SIZE``."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        """The source's inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        ...

    def consistency_proof(self, size1: int, size2: int) -> list[bytes] | None:
        """The source's consistency proof from ``size1`` to ``size2``."""
        ...


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError(f"{what} is not valid base64") from exc


class HttpLedgerSource:
    """A log read through the onshore API (``/v1/ledger/{region}/...``) with an auditor or officer token.

    Args:
        url: base URL of the server, e.g. ``http://127.0.0.1:8470``.
        region: the region whose log to read.
        token: the bearer token.
        timeout_s: per-request timeout.
    """

    def __init__(self, url: str, region: str, token: str, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.region = region
        self._client = httpx.Client(
            base_url=f"{self.url}/v1/ledger/{region}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def describe(self) -> str:
        return f"{self.url} (region {self.region})"

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise LedgerSourceError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code, message = error.get("code", "http_error"), error.get("message", response.text[:200])
            raise LedgerSourceError(
                f"{self.url}{path} answered {response.status_code} {code}: {message}",
                details={"status": response.status_code, "code": code},
            )
        if not isinstance(body, dict):
            raise LedgerSourceError(f"{self.url}{path} did not answer a JSON object")
        return body

    def checkpoints(self) -> CheckpointNotes:
        body = self._get("/checkpoint")
        current, witnessed = body.get("note"), body.get("witnessed_note")
        if not isinstance(current, str) or not (witnessed is None or isinstance(witnessed, str)):
            raise LedgerSourceError(f"{self.url}: the checkpoint answer has no note")
        return CheckpointNotes(current, witnessed)

    def entries(self, start: int, end: int) -> list[bytes]:
        body = self._get("/events", {"start": start, "end": end, "decode": "false"})
        events = body.get("events")
        if not isinstance(events, list) or len(events) != end - start:
            raise ProofError(f"server answered {len(events or [])} events for [{start}, {end})")
        entries = []
        for expected, item in enumerate(events, start):
            if not isinstance(item, dict) or item.get("index") != expected:
                raise ProofError(f"server answered events out of order near index {expected}")
            entries.append(_b64(item.get("entry"), f"event {expected}"))
        return entries

    def _proof(self, path: str, params: dict[str, Any]) -> list[bytes]:
        proof = self._get(path, params).get("proof")
        if not isinstance(proof, list):
            raise ProofError(f"server answered no proof for {path} {params}")
        return [_b64(item, "proof element") for item in proof]

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        return self._proof("/proof/inclusion", {"index": index, "size": size})

    def consistency_proof(self, size1: int, size2: int) -> list[bytes] | None:
        return self._proof("/proof/consistency", {"from": size1, "to": size2})


class BundleLedgerSource:
    """A log read from an exported bundle file (``onshore ledger export``); it carries no proofs.

    Raises:
        LedgerSourceError: the file cannot be read or is not a bundle.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            bundle = orjson.loads(self.path.read_bytes())
        except OSError as exc:
            raise LedgerSourceError(f"cannot read bundle {self.path}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise LedgerSourceError(f"bundle {self.path} is not JSON ({exc})") from exc
        if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
            raise LedgerSourceError(f"{self.path} is not an onshore ledger bundle ({BUNDLE_FORMAT})")
        entries, note, witnessed = bundle.get("entries"), bundle.get("checkpoint"), bundle.get("witnessed_checkpoint")
        region = bundle.get("region")
        if not isinstance(entries, list) or not isinstance(note, str) or not isinstance(region, str):
            raise LedgerSourceError(f"bundle {self.path} lacks its region, checkpoint or entries")
        self.region = region
        self._entries = entries
        self._notes = CheckpointNotes(note, witnessed if isinstance(witnessed, str) else None)

    def describe(self) -> str:
        return f"bundle {self.path} (region {self.region})"

    def checkpoints(self) -> CheckpointNotes:
        return self._notes

    def entries(self, start: int, end: int) -> list[bytes]:
        if end > len(self._entries):
            raise ProofError(f"bundle holds {len(self._entries)} entries; its checkpoint needs {end}")
        return [_b64(item, f"bundle entry {start + offset}") for offset, item in enumerate(self._entries[start:end])]

    def extra_entries(self, size: int) -> int:
        """Entries beyond ``size`` that no checkpoint covers."""
        return max(len(self._entries) - size, 0)

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        return None

    def consistency_proof(self, size1: int, size2: int) -> list[bytes] | None:
        return None
