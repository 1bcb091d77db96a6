"""A region's log signing keys, and the guard that no root contradicting an earlier checkpoint is signed.

The log signs with an Ed25519 key whose 32-byte seed is the region key ``ledger-signing-v<N>`` (``Region.keys``;
v1 is provisioned with the region's keys, later versions are created by a rotation), so the private key never
leaves the region's key store. The ``ledger_signing_keys`` table lists every version with its public key (vkey)
and when it was active; a rotation retires the active version and starts the next one with a handover
checkpoint signed by both. Old checkpoints stay verifiable with the old vkey, which auditors keep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, Column, Connection, Integer, String, Table, Text, select, update

from onshore import clock
from onshore.ledger.answers import LogKey
from onshore.ledger.checkpoint import NoteSigner, cosign, sign_checkpoint
from onshore.ledger.store import LedgerIntegrityError, MerkleLog
from onshore.storage.schema import metadata

if TYPE_CHECKING:
    from onshore.storage.region import Region

SIGNING_KEY_PREFIX = "ledger-signing-v"

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


def log_origin(region: Region) -> str:
    """The log's origin line and key name, ``onshore.<region>.<location>``."""
    return f"onshore.{region.name}.{region.settings.location}"


def checked_root(conn: Connection, log: MerkleLog, size: int) -> bytes:
    """Root at ``size``, after checking the stored tree still gives the last signed checkpoint's root.

    Raises:
        LedgerIntegrityError: the stored tree was altered outside onshore.
    """
    latest = log.latest_checkpoint(conn)
    if latest is not None and (
        latest.tree_size > log.tree_size(conn) or log.root(conn, latest.tree_size) != latest.root_hash
    ):
        raise LedgerIntegrityError(
            f"ledger {log.region!r}: the stored tree no longer gives the root signed at size {latest.tree_size}; "
            "it was altered outside onshore. Refusing to sign."
        )
    return log.root(conn, size)


class LogSigners:
    """The signing keys of every region's log: their rows, the active signer (cached), rotation."""

    def __init__(self) -> None:
        self._signers: dict[tuple[str, int], NoteSigner] = {}

    def _signer(self, region: Region, version: int, recorded_vkey: str | None, *, create: bool = False) -> NoteSigner:
        cached = self._signers.get((region.name, version))
        if cached is not None:
            return cached
        name = f"{SIGNING_KEY_PREFIX}{version}"
        seed = region.keys.ensure(name) if create else region.keys.key(name)
        signer = NoteSigner(log_origin(region), Ed25519PrivateKey.from_private_bytes(seed[:32]))
        if recorded_vkey is not None and signer.verifier.vkey != recorded_vkey:
            raise LedgerIntegrityError(
                f"region {region.name}: signing key {SIGNING_KEY_PREFIX}{version} in the key store does not match "
                "its recorded public key; restore the key file, or run `onshore ledger keys rotate`"
            )
        self._signers[(region.name, version)] = signer
        return signer

    def key_rows(self, conn: Connection, region: str) -> list[LogKey]:
        """Every key version of the region's log, oldest first."""
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
            clock.now_ms(),
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

    def active(self, conn: Connection, region: Region, log: MerkleLog) -> NoteSigner:
        """The active key's signer, creating version 1 on first use (inside the caller's write transaction)."""
        active = [key for key in self.key_rows(conn, region.name) if key.active]
        if not active:
            return self._add_key(conn, region, 1, log.tree_size(conn))[1]
        return self._signer(region, active[-1].version, active[-1].vkey)

    def rotate(self, conn: Connection, region: Region, log: MerkleLog) -> LogKey:
        """Retire the active key and start the next version, signing the current head with both (a handover)."""
        old_signer = self.active(conn, region, log)
        current = [key for key in self.key_rows(conn, region.name) if key.active][-1]
        size = log.tree_size(conn)
        root = checked_root(conn, log, size)
        conn.execute(
            update(ledger_signing_keys)
            .where(ledger_signing_keys.c.region == region.name, ledger_signing_keys.c.version == current.version)
            .values(retired_ms=clock.now_ms(), retired_at_size=size)
        )
        new_key, new_signer = self._add_key(conn, region, current.version + 1, size)
        note = cosign(sign_checkpoint(log_origin(region), size, root, old_signer), new_signer)
        log.record_checkpoint(conn, size, root, note)
        return new_key
