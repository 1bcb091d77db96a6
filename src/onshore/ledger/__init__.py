"""The ledger: each region's append-only Merkle transparency log and its signed checkpoints.

- ``merkle``: RFC 6962 / RFC 9162 hashing, proof generation and verification;
- ``store``: the log kept in SQL (``MerkleLog``), written inside the caller's transaction;
- ``checkpoint``: C2SP signed-note checkpoints, witness cosignatures, keys;
- the operator's side: ``signing`` (each region's signing keys, rotation), ``service`` (``LedgerService``:
  checkpoints, cosignatures, proofs, events), ``answers`` (what it answers), ``bundle`` (the offline file),
  ``http`` (the API), ``content_check`` (the stored rows against their events);
- the auditor's side: ``sources`` (the API or a bundle), ``event_check``, ``verify`` (``verify_ledger``).

A regulator verifies without trusting the operator: a checkpoint signed by the log (and cosigned by the
regulator as witness) fixes ``(tree_size, root)``; inclusion proofs tie events to it and consistency
proofs show later trees extend it.
"""

from onshore.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    VerifiedCheckpoint,
    cosign,
    generate_signer,
    key_id,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from onshore.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    SubtreeHashSource,
    generate_consistency_proof,
    generate_inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from onshore.ledger.store import (
    AppendResult,
    LedgerIntegrityError,
    MerkleLog,
    StoredCheckpoint,
    ledger_checkpoints,
    ledger_entries,
    ledger_leaves,
    ledger_nodes,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AppendResult",
    "Checkpoint",
    "CheckpointError",
    "LedgerIntegrityError",
    "MerkleLog",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "StoredCheckpoint",
    "SubtreeHashSource",
    "VerifiedCheckpoint",
    "cosign",
    "generate_consistency_proof",
    "generate_inclusion_proof",
    "generate_signer",
    "key_id",
    "leaf_hash",
    "leaf_hashes",
    "ledger_checkpoints",
    "ledger_entries",
    "ledger_leaves",
    "ledger_nodes",
    "node_hash",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
