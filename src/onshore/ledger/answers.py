"""What the ledger service answers: key versions, signed checkpoints, proofs, events, bundle summaries.

Each is a frozen dataclass with ``to_dict``, the shape the API and ``--json`` print; hashes and entries travel as
standard base64 (``b64``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from onshore.ledger.checkpoint import NoteVerifier


def b64(data: bytes) -> str:
    """Standard base64 text of ``data`` (how the ledger API and bundles carry hashes and entries)."""
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class LogKey:
    """One version of a region's log signing key: its public half and when it signed."""

    region: str
    version: int
    key_name: str
    vkey: str
    activated_ms: int
    activated_at_size: int
    retired_ms: int | None
    retired_at_size: int | None

    @property
    def active(self) -> bool:
        return self.retired_ms is None

    @property
    def key_id(self) -> str:
        return f"{NoteVerifier.from_vkey(self.vkey).key_id:08x}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "vkey": self.vkey,
            "key_id": self.key_id,
            "status": "active" if self.active else "retired",
            "activated_ms": self.activated_ms,
            "activated_at_size": self.activated_at_size,
            "retired_ms": self.retired_ms,
            "retired_at_size": self.retired_at_size,
        }


@dataclass(frozen=True)
class SignedCheckpoint:
    """A signed checkpoint note of a region's log, with its parsed head."""

    region: str
    origin: str
    tree_size: int
    root_hash: bytes
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "note": self.note,
        }


@dataclass(frozen=True)
class InclusionProof:
    """The audit path of leaf ``index`` in the tree of ``tree_size`` leaves (RFC 9162 §2.1.3.1)."""

    region: str
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    root_hash: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "proof": [b64(h) for h in self.proof],
            "root_hash": b64(self.root_hash),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2`` (RFC 9162 §2.1.4.1)."""

    region: str
    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "from": self.size1,
            "to": self.size2,
            "proof": [b64(h) for h in self.proof],
            "from_root": b64(self.root1),
            "to_root": b64(self.root2),
        }


@dataclass(frozen=True)
class LedgerEvent:
    """One leaf of the log: its index and the exact entry bytes (a ``LifecycleEvent`` in JSON)."""

    index: int
    entry: bytes

    @property
    def event(self) -> dict[str, Any] | None:
        """The entry decoded as a JSON object, or None when it is not one."""
        try:
            decoded = orjson.loads(self.entry)
        except orjson.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, dict) else None

    def to_dict(self, *, decode: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "entry": b64(self.entry)}
        if decode:
            body["event"] = self.event
        return body


@dataclass(frozen=True)
class BundleSummary:
    """What ``export_bundle`` wrote."""

    path: Path
    region: str
    tree_size: int
    root_hash: bytes
    bytes_written: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "region": self.region,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "bytes": self.bytes_written,
        }
