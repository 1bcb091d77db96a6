"""The ledger service: each region's signed checkpoints, witness cosignatures, proofs and events.

One ``LedgerService`` serves every region of a runtime; the API, the CLI and the demo call it. Per region:

- **checkpoints**: C2SP signed notes of the tree head, origin ``onshore.<region>.<location>`` (also the key
  name), signed with the active key (``ledger.signing``, which also rotates keys). Before signing, the service
  checks that the stored tree still reproduces the root of the last checkpoint it signed: it never signs a root
  that contradicts an earlier one.
- **witness cosignatures**: a witness (the regulator) cosigns a note offline (``cosign``); the operator
  records the cosigned note (``record_cosigned``) and serves the latest one beside the current checkpoint.
- **reading**: the tree size, inclusion and consistency proofs, events by page (``ledger.answers`` holds what
  is answered).
- **bundles**: ``export_bundle`` writes the offline file ``onshore ledger verify`` needs (``ledger.bundle``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from onshore.errors import InputError, NotFoundError
from onshore.ledger import bundle
from onshore.ledger.answers import (
    BundleSummary,
    ConsistencyProof,
    InclusionProof,
    LedgerEvent,
    LogKey,
    SignedCheckpoint,
)
from onshore.ledger.checkpoint import (
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    cosign,
    note_signer_names,
    sign_checkpoint,
    verify_checkpoint,
)
from onshore.ledger.merkle import leaf_hash
from onshore.ledger.signing import LogSigners, checked_root, log_origin
from onshore.ledger.store import MerkleLog, ledger_checkpoints

if TYPE_CHECKING:
    from onshore.model import LifecycleEvent
    from onshore.storage.region import Region

MAX_EVENTS_PER_PAGE = 10_000


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
        self._signers = LogSigners()

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
        return log_origin(self._region(region))

    def public_keys(self, region: str) -> list[LogKey]:
        """Every signing key version of the region's log, oldest first (creates version 1 on first use).

        Raises:
            NotFoundError: the region is not configured.
        """
        reg = self._region(region)
        with reg.store.transaction("read ledger keys") as conn:
            self._signers.active(conn, reg, MerkleLog(region))
            return self._signers.key_rows(conn, region)

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
        with reg.store.transaction("rotate ledger key") as conn:
            new_key = self._signers.rotate(conn, reg, MerkleLog(region))
        return new_key

    # --- checkpoints ---------------------------------------------------------------------------------

    def _sign(self, conn: Connection, reg: Region, size: int) -> SignedCheckpoint:
        log = MerkleLog(reg.name)
        signer = self._signers.active(conn, reg, log)
        root = checked_root(conn, log, size)
        origin = log_origin(reg)
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
            signer = self._signers.active(conn, reg, log)
            if latest is not None and latest.tree_size == size and _signed_by(latest.note, signer):
                root = checked_root(conn, log, size)
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
                root = checked_root(conn, log, size)
                if root == bytes(row.root_hash):
                    return SignedCheckpoint(region, log_origin(reg), size, root, row.note)
            return self._sign(conn, reg, size)

    def witnessed_checkpoint(self, region: str, max_size: int | None = None) -> SignedCheckpoint | None:
        """The recorded checkpoint of the largest size (at most ``max_size``) that carries a witness cosignature.

        Raises:
            NotFoundError: the region is not configured.
        """
        reg = self._region(region)
        origin = log_origin(reg)
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
        origin = log_origin(reg)
        keys = [NoteVerifier.from_vkey(key.vkey) for key in self.public_keys(region)]
        checkpoint = verify_checkpoint(note, keys, origin=origin).checkpoint
        if all(name == origin for name in note_signer_names(note)):
            raise CheckpointError("the note carries no witness cosignature; cosign it first")
        log = MerkleLog(region)
        with reg.store.transaction("record cosigned checkpoint") as conn:
            checked_root(conn, log, checkpoint.tree_size)
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
        """Write an offline bundle of the log's first ``up_to`` events (default: all) to ``path`` (``ledger.bundle``).

        Raises:
            NotFoundError: the region is not configured.
            InputError: ``up_to`` is beyond the log, or the file cannot be written.
            LedgerIntegrityError: the stored tree contradicts the last checkpoint, or an entry is missing.
        """
        return bundle.export_bundle(self, self._region(region), path, up_to)
