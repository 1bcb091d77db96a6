"""Encryption at rest: one AES-256-GCM data key per subject, wrapped by the region's key-encryption key.

The wrapped data keys live in their own SQLite file inside the region's key-store folder — not in the
record store — so backups of the record store hold only ciphertext. Destroying a subject's key (the row,
with ``secure_delete`` so its bytes are overwritten) makes every copy of their data unreadable at once:
erasure by crypto-shredding. Authenticated data binds each ciphertext to its region, vehicle and message id,
so a ciphertext moved to another record or region does not decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onshore.errors import StorageError

CIPHERTEXT_PREFIX = "e1:"
KEK_NAME = "kek"


class SubjectKeyStore:
    """Per-subject data keys of one region, wrapped by the region KEK, in ``<key folder>/subject-keys.sqlite``."""

    def __init__(self, folder: Path, *, region: str, kek: bytes) -> None:
        self.region = region
        self._kek = AESGCM(kek)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "subject-keys.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA secure_delete=ON")  # destroyed keys are overwritten, not just unlinked
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS subject_keys (subject_ref TEXT PRIMARY KEY, wrapped BLOB NOT NULL, "
            "created_ms INTEGER NOT NULL)"
        )
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    def _aad(self, subject_ref: str) -> bytes:
        return f"onshore-dek|{self.region}|{subject_ref}".encode()

    def keys_for(self, subject_refs: Iterable[str], *, create: bool) -> dict[str, bytes]:
        """Unwrapped data keys of ``subject_refs``; missing ones are created when ``create`` (else absent)."""
        refs = sorted(set(subject_refs))
        if not refs:
            return {}
        try:
            with self._lock:
                marks = ",".join("?" * len(refs))
                rows = dict(
                    self._db.execute(
                        f"SELECT subject_ref, wrapped FROM subject_keys WHERE subject_ref IN ({marks})", refs
                    ).fetchall()
                )
                missing = [r for r in refs if r not in rows]
                if missing and create:
                    now = int(time.time() * 1000)
                    fresh = []
                    for ref in missing:
                        nonce = os.urandom(12)
                        wrapped = nonce + self._kek.encrypt(nonce, AESGCM.generate_key(256), self._aad(ref))
                        fresh.append((ref, wrapped, now))
                    self._db.executemany(
                        "INSERT OR IGNORE INTO subject_keys (subject_ref, wrapped, created_ms) VALUES (?, ?, ?)", fresh
                    )
                    rows.update(
                        self._db.execute(
                            f"SELECT subject_ref, wrapped FROM subject_keys WHERE subject_ref IN ({marks})", refs
                        ).fetchall()
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"region {self.region}: subject key store failed ({exc.__class__.__name__})") from exc
        keys: dict[str, bytes] = {}
        for ref, wrapped in rows.items():
            try:
                keys[ref] = self._kek.decrypt(wrapped[:12], wrapped[12:], self._aad(ref))
            except InvalidTag:
                raise StorageError(f"region {self.region}: a wrapped subject key does not match the KEK") from None
        return keys

    def destroy(self, subject_ref: str) -> bool:
        """Destroy the subject's data key; True when there was one."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM subject_keys WHERE subject_ref = ?", (subject_ref,)).rowcount
        return bool(deleted)

    def exists(self, subject_ref: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM subject_keys WHERE subject_ref = ?", (subject_ref,)).fetchone()
                is not None
            )

    def close(self) -> None:
        self._db.close()


def encrypt_values(
    key: bytes, region: str, vehicle_ref: str, msg_ids: Sequence[str], plaintexts: Sequence[str]
) -> list[str]:
    """Encrypt JSON texts under ``key``; nonce = 8 random bytes per call + a 4-byte counter (never reused)."""
    aead = AESGCM(key)
    prefix = os.urandom(8)
    b64 = base64.b64encode
    out = []
    base_aad = f"{region}|{vehicle_ref}|"
    for i, (msg_id, text) in enumerate(zip(msg_ids, plaintexts, strict=True)):
        nonce = prefix + i.to_bytes(4, "big")
        sealed = aead.encrypt(nonce, text.encode(), (base_aad + msg_id).encode())
        out.append(CIPHERTEXT_PREFIX + b64(nonce + sealed).decode())
    return out


def decrypt_value(key: bytes, region: str, vehicle_ref: str, msg_id: str, stored: str) -> str:
    """The JSON text of one stored ciphertext.

    Raises:
        StorageError: the ciphertext does not authenticate (wrong key, record or region).
    """
    raw = base64.b64decode(stored[len(CIPHERTEXT_PREFIX) :])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], f"{region}|{vehicle_ref}|{msg_id}".encode()).decode()
    except InvalidTag:
        raise StorageError("a stored ciphertext does not authenticate for its record and region") from None


def is_encrypted(stored: str | None) -> bool:
    return stored is not None and stored.startswith(CIPHERTEXT_PREFIX)


_BLOB_MAGIC = b"onsb1"


def encrypt_blob(key: bytes, region: str, vehicle_ref: str, msg_id: str, data: bytes) -> bytes:
    """Seal a blob (a raw frame) under a subject's data key, bound to its region, vehicle and message."""
    nonce = os.urandom(12)
    aad = f"blob|{region}|{vehicle_ref}|{msg_id}".encode()
    return _BLOB_MAGIC + nonce + AESGCM(key).encrypt(nonce, data, aad)


def decrypt_blob(key: bytes, region: str, vehicle_ref: str, msg_id: str, sealed: bytes) -> bytes:
    """The bytes of a blob sealed by `encrypt_blob`.

    Raises:
        StorageError: not a sealed blob, or it does not authenticate for this region, vehicle and message.
    """
    if not sealed.startswith(_BLOB_MAGIC) or len(sealed) < len(_BLOB_MAGIC) + 12 + 16:
        raise StorageError("a stored blob is not an onshore sealed blob")
    body = sealed[len(_BLOB_MAGIC) :]
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], f"blob|{region}|{vehicle_ref}|{msg_id}".encode())
    except InvalidTag:
        raise StorageError("a stored blob does not authenticate for its record and region") from None
