"""Encryption at rest: one AES-256-GCM data key per subject, wrapped by the region's key-encryption key.

The wrapped data keys live in the region's key store (``storage/keys.py``: a SQLite file in the key folder,
or tables of a separate key database) — never in the record store — so backups of the record store hold
only ciphertext. Destroying a subject's key makes every copy of their data unreadable at once: erasure by
crypto-shredding (what each backend guarantees: docs/keys-and-erasure.md). Authenticated data binds each
ciphertext to its region, vehicle and message id, so a ciphertext moved to another record or region does not
decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onshore import clock
from onshore.errors import StorageError

CIPHERTEXT_PREFIX = "e1:"
KEK_NAME = "kek"


def wrap_data_key(kek: AESGCM, region: str, subject_ref: str, data_key: bytes) -> bytes:
    """``data_key`` sealed under the region KEK, bound to its region and subject (nonce || ciphertext)."""
    nonce = os.urandom(12)
    return nonce + kek.encrypt(nonce, data_key, _dek_aad(region, subject_ref))


def new_wrapped_data_key(kek: AESGCM, region: str, subject_ref: str) -> bytes:
    """A fresh AES-256 data key for ``subject_ref``, already wrapped (the plaintext key is not returned)."""
    return wrap_data_key(kek, region, subject_ref, AESGCM.generate_key(256))


def unwrap_data_keys(kek: AESGCM, region: str, wrapped: dict[str, bytes]) -> dict[str, bytes]:
    """Subject → data key, from subject → wrapped key.

    Raises:
        StorageError: a wrapped key does not authenticate under this KEK (wrong KEK, or moved from another
            region or subject).
    """
    keys: dict[str, bytes] = {}
    for ref, blob in wrapped.items():
        try:
            keys[ref] = kek.decrypt(blob[:12], blob[12:], _dek_aad(region, ref))
        except InvalidTag:
            raise StorageError(f"region {region}: a wrapped subject key does not match the KEK") from None
    return keys


def _dek_aad(region: str, subject_ref: str) -> bytes:
    return f"onshore-dek|{region}|{subject_ref}".encode()


class SubjectKeyFile:
    """The folder backend's wrapped subject keys: ``<key folder>/subject-keys.sqlite`` (secure_delete on).

    Every call reads the file: no data key is cached, so an erasure by another process is seen at once.
    """

    def __init__(self, folder: Path, *, region: str, kek: bytes) -> None:
        self.region = region
        self._kek = AESGCM(kek)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "subject-keys.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA secure_delete=ON")  # destroyed keys are overwritten, not just unlinked
        self._db.execute("PRAGMA journal_mode=DELETE")  # no WAL file keeping old pages after a checkpoint
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS subject_keys (subject_ref TEXT PRIMARY KEY, wrapped BLOB NOT NULL, "
            "created_ms INTEGER NOT NULL)"
        )
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    def keys_for(self, subject_refs: Iterable[str], *, create: bool) -> dict[str, bytes]:
        """Unwrapped data keys of ``subject_refs``; missing ones are created when ``create`` (else absent)."""
        refs = sorted(set(subject_refs))
        if not refs:
            return {}
        try:
            with self._lock:
                marks = ",".join("?" * len(refs))
                query = f"SELECT subject_ref, wrapped FROM subject_keys WHERE subject_ref IN ({marks})"
                rows = dict(self._db.execute(query, refs).fetchall())
                missing = [r for r in refs if r not in rows]
                if missing and create:
                    now = clock.now_ms()
                    fresh = [(ref, new_wrapped_data_key(self._kek, self.region, ref), now) for ref in missing]
                    self._db.executemany(
                        "INSERT OR IGNORE INTO subject_keys (subject_ref, wrapped, created_ms) VALUES (?, ?, ?)", fresh
                    )
                    rows.update(self._db.execute(query, refs).fetchall())
        except sqlite3.Error as exc:
            raise StorageError(f"region {self.region}: subject key store failed ({exc.__class__.__name__})") from exc
        return unwrap_data_keys(self._kek, self.region, rows)

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

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM subject_keys").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def encrypt_values(
    key: bytes, region: str, vehicle_ref: str, msg_ids: Sequence[str], plaintexts: Sequence[str]
) -> list[str]:
    """Encrypt JSON texts under ``key``; nonce = 8 random bytes per call + a 4-byte counter (never reused)."""
    seal = AESGCM(key).encrypt
    prefix = os.urandom(8)
    b64 = base64.b64encode
    base_aad = f"{region}|{vehicle_ref}|".encode()
    # one comprehension, no call of ours per value: this runs for every personal record ingested
    nonces = [prefix + i.to_bytes(4, "big") for i in range(len(plaintexts))]
    return [
        CIPHERTEXT_PREFIX + b64(nonce + seal(nonce, text.encode(), base_aad + msg_id.encode())).decode()
        for nonce, msg_id, text in zip(nonces, msg_ids, plaintexts, strict=True)
    ]


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
