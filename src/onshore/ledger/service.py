"""The ledger service: each region's signing keys, signed checkpoints, proofs, events and offline bundles.

One ``LedgerService`` serves every region of a runtime; the API, the CLI and the demo call it. Per region:

- **signing keys**: the log signs with an Ed25519 key whose 32-byte seed is the region key
  ``ledger-signing-v<N>`` (``Region.keys``; v1 is provisioned with the region's keys, later versions are
  created by ``rotate_key``), so the private key never leaves the region's key
  store. The ``ledger_signing_keys`` table lists every version with its public key (vkey) and when it was
  active; ``rotate_key`` retires the active version and starts the next one with a handover checkpoint
  signed by both. Old checkpoints stay verifiable with the old vkey, which auditors keep.
- **checkpoints**: C2SP signed notes of the tree head, origin ``onshore.<region>.<location>`` (also the key
  name). Before signing, the service checks that the stored tree still reproduces the root of the last
  checkpoint it signed: it never signs a root that contradicts an earlier one.
- **witness cosignatures**: a witness (the regulator) cosigns a note offline (``cosign``); the operator
  records the cosigned note (``record_cosigned``) and serves the latest one beside the current checkpoint.
- **bundles**: ``export_bundle`` writes one JSON file holding the entries, the signed checkpoint at the
  bundle's size, the latest witnessed checkpoint and the public keys: all ``onshore ledger verify`` needs
  offline.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, Column, Connection, Integer, String, Table, Text, select, update

from onshore import clock
from onshore.errors import InputError, NotFoundError
from onshore.ledger.checkpoint import (
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    cosign,
    sign_checkpoint,
    verify_checkpoint,
)
from onshore.ledger.merkle import leaf_hash
from onshore.ledger.store import LedgerIntegrityError, MerkleLog, ledger_checkpoints
from onshore.storage.schema import metadata

if TYPE_CHECKING:
    from onshore.model import LifecycleEvent
    from onshore.storage.region import Region

SIGNING_KEY_PREFIX = "ledger-signing-v"
BUNDLE_FORMAT = "onshore-ledger-bundle/1"
MAX_EVENTS_PER_PAGE = 10_000
_EXPORT_CHUNK = 10_000
_SIGNATURE_PREFIX = "\u2014 "

ledger_signing_keys = Table(
    "ledger_signing_keys",
    metadata,
    Column("region", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key_name", String(64), nullable=False),  # the seed's name in the region key store
    Column("vkey", Text, nullable=False),
    Column("activated_ms", BigInteger, nullable=False),
    Column("activated_at_size", BigInteger, nullable=False),
    Column("retired_ms", BigInteger, nullable=True),
    Column("retired_at_size", BigInteger, nullable=True),
)


def b64(data: bytes) -> str:
    """Standard base64 text of ``data`` (how the ledger API and bundles carry hashes and entries)."""
    return base64.b64encode(data).decode()


def _now_ms() -> int:
    return clock.now_ms()


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


def note_signer_names(note: str) -> list[str]:
    """Names on a signed note's signature lines (without checking them), in order."""
    _, _, block = note.rpartition("\n\n")
    return [line.removeprefix(_SIGNATURE_PREFIX).split(" ", 1)[0] for line in block.splitlines() if line]


def _origin(region: Region) -> str:
    return f"onshore.{region.name}.{region.settings.location}"


def _signed_by(note: str, signer: NoteSigner) -> bool:
    try:
        verify_checkpoint(note, [signer.verifier], origin=signer.name)
    except CheckpointError:
        return False
    return True


class LedgerService:
    """Signed checkpoints, proofs, events, keys and bundles of every region's Merkle log.

    Args:
        regions: the runtime's regions by name; each region's log lives in its record store.
    """

    def __init__(self, regions: Mapping[str, Region]) -> None:
        self.regions = regions
        self._signers: dict[tuple[str, int], NoteSigner] = {}

    # --- regions and keys ----------------------------------------------------------------------------

    def _region(self, name: str) -> Region:
        region = self.regions.get(name)
        if region is None:
            raise NotFoundError(f"region {name!r} is not configured; configured: {', '.join(self.regions)}")
        return region

    def origin(self, region: str) -> str:
        """The log's origin line and key name, ``onshore.<region>.<location>``.

        Raises:
            NotFoundError: the region is not configured.
        """
        return _origin(self._region(region))

    def _signer(self, region: Region, version: int, recorded_vkey: str | None, *, create: bool = False) -> NoteSigner:
        cached = self._signers.get((region.name, version))
        if cached is not None:
            return cached
        name = f"{SIGNING_KEY_PREFIX}{version}"
        seed = region.keys.ensure(name) if create else region.keys.key(name)
        signer = NoteSigner(_origin(region), Ed25519PrivateKey.from_private_bytes(seed[:32]))
        if recorded_vkey is not None and signer.verifier.vkey != recorded_vkey:
            raise LedgerIntegrityError(
                f"region {region.name}: signing key {SIGNING_KEY_PREFIX}{version} in the key store does not match "
                "its recorded public key; restore the key file, or run `onshore ledger keys rotate`"
            )
        self._signers[(region.name, version)] = signer
        return signer

    def _key_rows(self, conn: Connection, region: str) -> list[LogKey]:
        rows = conn.execute(
            select(ledger_signing_keys).where(ledger_signing_keys.c.region == region).order_by("version")
        ).all()
        return [
            LogKey(
                region=row.region,
                version=int(row.version),
                key_name=row.key_name,
                vkey=row.vkey,
                activated_ms=int(row.activated_ms),
                activated_at_size=int(row.activated_at_size),
                retired_ms=None if row.retired_ms is None else int(row.retired_ms),
                retired_at_size=None if row.retired_at_size is None else int(row.retired_at_size),
            )
            for row in rows
        ]

    def _add_key(self, conn: Connection, region: Region, version: int, tree_size: int) -> tuple[LogKey, NoteSigner]:
        # Version 1 is provisioned with the region's keys; a rotation creates the next one in the key store.
        signer = self._signer(region, version, None, create=version > 1)
        key = LogKey(
            region.name,
            version,
            f"{SIGNING_KEY_PREFIX}{version}",
            signer.verifier.vkey,
            _now_ms(),
            tree_size,
            None,
            None,
        )
        conn.execute(
            ledger_signing_keys.insert(),
            {
                "region": key.region,
                "version": key.version,
                "key_name": key.key_name,
                "vkey": key.vkey,
                "activated_ms": key.activated_ms,
                "activated_at_size": key.activated_at_size,
            },
        )
        return key, signer

    def _active_signer(self, conn: Connection, region: Region, log: MerkleLog) -> NoteSigner:
        """The active key's signer, creating version 1 on first use (inside the caller's write transaction)."""
        active = [key for key in self._key_rows(conn, region.name) if key.active]
        if not active:
            return self._add_key(conn, region, 1, log.tree_size(conn))[1]
        return self._signer(region, active[-1].version, active[-1].vkey)

    def public_keys(self, region: str) -> list[LogKey]:
        """Every signing key version of the region's log, oldest first (creates version 1 on first use).

        Raises:
            NotFoundError: the region is not configured.
        """
        reg = self._region(region)
        with reg.store.transaction("read ledger keys") as conn:
            self._active_signer(conn, reg, MerkleLog(region))
            return self._key_rows(conn, region)

    def rotate_key(self, region: str) -> LogKey:
        """Retire the active signing key and start the next version.

        The current tree head is signed by the old and the new key (a handover checkpoint), so an auditor
        who trusts the old key sees the new one take over at that size. Old checkpoints keep verifying
        with the old public key; keep publishing it.

        Raises:
            NotFoundError: the region is not configured.
            LedgerIntegrityError: the stored tree contradicts the last checkpoint, or a key does not match.
        """
        reg = self._region(region)
        log = MerkleLog(region)
        with reg.store.transaction("rotate ledger key") as conn:
            old_signer = self._active_signer(conn, reg, log)
            current = [key for key in self._key_rows(conn, region) if key.active][-1]
            size = log.tree_size(conn)
            root = self._checked_root(conn, log, size)
            conn.execute(
                update(ledger_signing_keys)
                .where(ledger_signing_keys.c.region == region, ledger_signing_keys.c.version == current.version)
                .values(retired_ms=_now_ms(), retired_at_size=size)
            )
            new_key, new_signer = self._add_key(conn, reg, current.version + 1, size)
            note = cosign(sign_checkpoint(_origin(reg), size, root, old_signer), new_signer)
            log.record_checkpoint(conn, size, root, note)
        return new_key

    # --- checkpoints ---------------------------------------------------------------------------------

    def _checked_root(self, conn: Connection, log: MerkleLog, size: int) -> bytes:
        """Root at ``size``, after checking the stored tree still gives the last signed checkpoint's root."""
        latest = log.latest_checkpoint(conn)
        if latest is not None and (
            latest.tree_size > log.tree_size(conn) or log.root(conn, latest.tree_size) != latest.root_hash
        ):
            raise LedgerIntegrityError(
                f"ledger {log.region!r}: the stored tree no longer gives the root signed at size {latest.tree_size}; "
                "it was altered outside onshore. Refusing to sign."
            )
        return log.root(conn, size)

    def _sign(self, conn: Connection, reg: Region, size: int) -> SignedCheckpoint:
        log = MerkleLog(reg.name)
        signer = self._active_signer(conn, reg, log)
        root = self._checked_root(conn, log, size)
        origin = _origin(reg)
        note = sign_checkpoint(origin, size, root, signer)
        log.record_checkpoint(conn, size, root, note)
        return SignedCheckpoint(reg.name, origin, size, root, note)

    def checkpoint(self, region: str) -> SignedCheckpoint:
        """Sign the current tree head with the active key, record it, and return it.

        Raises:
            NotFoundError: the region is not configured.
            LedgerIntegrityError: the stored tree contradicts the last checkpoint signed, or the key store's
                key does not match its recorded public key.
        """
        reg = self._region(region)
        with reg.store.transaction("sign ledger checkpoint") as conn:
            return self._sign(conn, reg, MerkleLog(region).tree_size(conn))

    def current_checkpoint(self, region: str) -> SignedCheckpoint:
        """A checkpoint of the whole log: the last one recorded when it covers every leaf and was signed by the
        active key (after re-checking its root against the stored tree), else a freshly signed one.

        Raises:
            NotFoundError, LedgerIntegrityError: as ``checkpoint``.
        """
        reg = self._region(region)
        log = MerkleLog(region)
        with reg.store.transaction("read ledger checkpoint") as conn:
            size = log.tree_size(conn)
            latest = log.latest_checkpoint(conn)
            signer = self._active_signer(conn, reg, log)
            if latest is not None and latest.tree_size == size and _signed_by(latest.note, signer):
                root = self._checked_root(conn, log, size)
                return SignedCheckpoint(region, signer.name, size, root, latest.note)
            return self._sign(conn, reg, size)

    def checkpoint_at(self, region: str, size: int) -> SignedCheckpoint:
        """A checkpoint at exactly ``size`` leaves: a recorded one when there is one, else a newly signed one.

        Raises:
            InputError: ``size`` is beyond the log.
            NotFoundError, LedgerIntegrityError: as ``checkpoint``.
        """
        reg = self._region(region)
        log = MerkleLog(region)
        with reg.store.transaction("sign ledger checkpoint") as conn:
            if not 0 <= size <= log.tree_size(conn):
                raise InputError(f"tree size {size} is not available; ledger {region!r} has {log.tree_size(conn)}")
            row = conn.execute(
                select(ledger_checkpoints.c.note, ledger_checkpoints.c.root_hash)
                .where(ledger_checkpoints.c.region == region, ledger_checkpoints.c.tree_size == size)
                .order_by(ledger_checkpoints.c.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                root = self._checked_root(conn, log, size)
                if root == bytes(row.root_hash):
                    return SignedCheckpoint(region, _origin(reg), size, root, row.note)
            return self._sign(conn, reg, size)

    def witnessed_checkpoint(self, region: str, max_size: int | None = None) -> SignedCheckpoint | None:
        """The recorded checkpoint of the largest size (at most ``max_size``) that carries a witness cosignature.

        Raises:
            NotFoundError: the region is not configured.
        """
        reg = self._region(region)
        origin = _origin(reg)
        query = (
            select(ledger_checkpoints.c.tree_size, ledger_checkpoints.c.root_hash, ledger_checkpoints.c.note)
            .where(ledger_checkpoints.c.region == region)
            .order_by(ledger_checkpoints.c.tree_size.desc(), ledger_checkpoints.c.id.desc())
        )
        if max_size is not None:
            query = query.where(ledger_checkpoints.c.tree_size <= max_size)
        with reg.store.read("read witnessed checkpoint") as conn:
            for size, root, note in conn.execute(query):
                if any(name != origin for name in note_signer_names(note)):
                    return SignedCheckpoint(region, origin, int(size), bytes(root), note)
        return None

    @staticmethod
    def cosign(note: str, witness: NoteSigner, *, log_keys: Iterable[NoteVerifier] = ()) -> str:
        """Add the witness's cosignature to a checkpoint note, after checking the log's signature.

        Args:
            note: the signed checkpoint note.
            witness: the witness's signer (the regulator's private key).
            log_keys: the log's trusted public keys; when given, the note must carry a valid signature by one.

        Raises:
            CheckpointError: the note is malformed, not validly signed by a log key, or already cosigned.
        """
        keys = list(log_keys)
        if keys:
            names = {key.name for key in keys}
            if len(names) != 1:
                raise InputError(f"log keys name several logs ({sorted(names)}); give the keys of one log")
            verify_checkpoint(note, keys, origin=names.pop())
        return cosign(note, witness)

    def record_cosigned(self, region: str, note: str) -> SignedCheckpoint:
        """Record a checkpoint note cosigned by a witness, so the API and bundles serve it.

        Raises:
            CheckpointError: the note is not validly signed by one of the region's log keys, or carries no
                signature other than the log's.
            InputError: its root is not the log's root at its size.
        """
        reg = self._region(region)
        origin = _origin(reg)
        keys = [NoteVerifier.from_vkey(key.vkey) for key in self.public_keys(region)]
        checkpoint = verify_checkpoint(note, keys, origin=origin).checkpoint
        if all(name == origin for name in note_signer_names(note)):
            raise CheckpointError("the note carries no witness cosignature; cosign it first")
        log = MerkleLog(region)
        with reg.store.transaction("record cosigned checkpoint") as conn:
            self._checked_root(conn, log, checkpoint.tree_size)
            log.record_checkpoint(conn, checkpoint.tree_size, checkpoint.root_hash, note)
        return SignedCheckpoint(region, origin, checkpoint.tree_size, checkpoint.root_hash, note)

    # --- reading -------------------------------------------------------------------------------------

    def tree_size(self, region: str) -> int:
        """Number of events in the region's log.

        Raises:
            NotFoundError: the region is not configured.
        """
        reg = self._region(region)
        with reg.store.read("read ledger size") as conn:
            return MerkleLog(region).tree_size(conn)

    def inclusion_proof(self, region: str, index: int, size: int) -> InclusionProof:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

        Raises:
            NotFoundError: the region is not configured.
            InputError: ``size`` is beyond the log or ``index`` is not below it.
            LedgerIntegrityError: a stored row the proof needs is missing.
        """
        reg = self._region(region)
        log = MerkleLog(region)
        with reg.store.read("read inclusion proof") as conn:
            proof = log.inclusion_proof(conn, index, size)
            entry = log.entries(conn, index, index + 1)[0]
            return InclusionProof(region, index, size, leaf_hash(entry), proof, log.root(conn, size))

    def consistency_proof(self, region: str, size1: int, size2: int) -> ConsistencyProof:
        """The consistency proof from ``size1`` to ``size2`` leaves.

        Raises:
            NotFoundError: the region is not configured.
            InputError: not ``0 < size1 <= size2 <= tree size``.
            LedgerIntegrityError: a stored row the proof needs is missing.
        """
        reg = self._region(region)
        log = MerkleLog(region)
        with reg.store.read("read consistency proof") as conn:
            proof = log.consistency_proof(conn, size1, size2)
            return ConsistencyProof(region, size1, size2, proof, log.root(conn, size1), log.root(conn, size2))

    def events(self, region: str, start: int, end: int) -> list[LedgerEvent]:
        """Events ``[start, end)`` of the log (at most ``MAX_EVENTS_PER_PAGE``), with their leaf indexes.

        Raises:
            NotFoundError: the region is not configured.
            InputError: the range is empty-negative, beyond the log, or longer than a page.
            LedgerIntegrityError: an entry in the range is missing.
        """
        if end - start > MAX_EVENTS_PER_PAGE:
            raise InputError(f"event range [{start}, {end}) is longer than {MAX_EVENTS_PER_PAGE}; page through it")
        reg = self._region(region)
        with reg.store.read("read ledger events") as conn:
            entries = MerkleLog(region).entries(conn, start, end)
        return [LedgerEvent(start + offset, entry) for offset, entry in enumerate(entries)]

    def append_event(self, region: str, event: LifecycleEvent) -> int:
        """Append one lifecycle event on its own transaction; returns its leaf index.

        Raises:
            NotFoundError: the region is not configured.
            InputError: the event belongs to another region.
        """
        reg = self._region(region)
        if event.region != region:
            raise InputError(f"event of region {event.region!r} cannot go into the log of region {region!r}")
        return reg.store.append_events([event])

    # --- bundles -------------------------------------------------------------------------------------

    def export_bundle(self, region: str, path: Path, up_to: int | None = None) -> BundleSummary:
        """Write an offline bundle of the log's first ``up_to`` events (default: all) to ``path``.

        The bundle is one JSON object: ``format``, ``region``, ``origin``, ``tree_size``, ``root_hash``,
        ``checkpoint`` (signed note at ``tree_size``), ``witnessed_checkpoint`` (latest cosigned note at or
        below it, or null), ``keys`` (every log key version) and ``entries`` (base64 of each event's exact
        bytes, in leaf order). It is written to a temporary file and renamed into place.

        Raises:
            NotFoundError: the region is not configured.
            InputError: ``up_to`` is beyond the log.
            LedgerIntegrityError: the stored tree contradicts the last checkpoint, or an entry is missing.
        """
        reg = self._region(region)
        size = self.tree_size(region) if up_to is None else up_to
        signed = self.checkpoint_at(region, size)
        witnessed = self.witnessed_checkpoint(region, max_size=size)
        header = {
            "format": BUNDLE_FORMAT,
            "region": region,
            "origin": signed.origin,
            "tree_size": size,
            "root_hash": b64(signed.root_hash),
            "checkpoint": signed.note,
            "witnessed_checkpoint": None if witnessed is None else witnessed.note,
            "keys": [key.to_dict() for key in self.public_keys(region)],
            "exported_ms": _now_ms(),
        }
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        log = MerkleLog(region)
        try:
            with tmp.open("wb") as fh, reg.store.read("export ledger bundle") as conn:
                fh.write(orjson.dumps(header)[:-1] + b',"entries":[')
                for start in range(0, size, _EXPORT_CHUNK):
                    entries = log.entries(conn, start, min(start + _EXPORT_CHUNK, size))
                    encoded = b",".join(b'"' + base64.b64encode(entry) + b'"' for entry in entries)
                    fh.write((b"," if start else b"") + encoded)
                fh.write(b"]}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise InputError(f"cannot write bundle {path}: {exc.strerror or exc.__class__.__name__}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return BundleSummary(path, region, size, signed.root_hash, path.stat().st_size)


__all__ = [
    "BUNDLE_FORMAT",
    "MAX_EVENTS_PER_PAGE",
    "BundleSummary",
    "ConsistencyProof",
    "InclusionProof",
    "LedgerEvent",
    "LedgerService",
    "LogKey",
    "SignedCheckpoint",
    "ledger_signing_keys",
    "note_signer_names",
]
