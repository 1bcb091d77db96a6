"""Signed checkpoints of a region's log: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes.

A checkpoint note looks like this (the body, a blank line, then one signature line per key)::

    onshore.example/cn-guizhou
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — onshore.example/cn-guizhou Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe...
    — regulator.example/witness 8xJ0AbD4...

Signatures are Ed25519 (signature type ``0x01``); a key is named and identified by its key ID, the first
four bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``. Keys travel in the text forms of
``golang.org/x/mod/sumdb/note``: ``<name>+<hex key ID>+<base64(0x01 || public key)>`` for verifier keys and
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` for signer keys, so Go tooling reads them too.

The log signs; witnesses (the regulator, an auditor) add cosignature lines with ``cosign``. A verifier
trusts a *set* of log keys, so checkpoints signed before a key rotation stay verifiable with the old key,
and it can require a signature from each named witness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onshore.errors import CheckpointError, InputError
from onshore.ledger.merkle import HASH_SIZE

ED25519_SIGNATURE_TYPE = 0x01
MAX_SIGNATURES = 100  # the signed-note spec asks verifiers to cap signatures and accept at least 16
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL_EXCEPT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")


def key_id(name: str, public_key: bytes) -> int:
    """Signed-note key ID of an Ed25519 key: ``SHA-256(name || 0x0A || 0x01 || public_key)[:4]``, big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _is_valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _decode_key_material(encoded: str, what: str) -> bytes:
    try:
        material = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not valid base64") from exc
    if len(material) != 33 or material[0] != ED25519_SIGNATURE_TYPE:
        raise InputError(f"{what} is not an Ed25519 key (0x01 followed by 32 bytes)")
    return material[1:]


def _parse_key_name_and_id(name: str, key_id_hex: str, what: str) -> tuple[str, int]:
    if not _is_valid_key_name(name):
        raise InputError(f"{what}: key name {name!r} must be non-empty, without spaces or '+'")
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise InputError(f"{what}: key ID {key_id_hex!r} must be 8 hexadecimal digits")
    return name, int(key_id_hex, 16)


@dataclass(frozen=True)
class NoteVerifier:
    """A public Ed25519 key that checks note signatures, known by name and key ID."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``.

        Raises:
            InputError: the text is malformed or its key ID does not match the key.
        """
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise InputError("verifier key must look like <name>+<key ID>+<base64 key>")
        name, claimed_id = _parse_key_name_and_id(parts[0], parts[1], "verifier key")
        public_key = _decode_key_material(parts[2], f"verifier key {name!r}")
        if key_id(name, public_key) != claimed_id:
            raise InputError(f"verifier key {name!r}: key ID {parts[1]} does not match the key")
        return cls(name, claimed_id, public_key)

    @property
    def vkey(self) -> str:
        """The text form ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        material = base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class NoteSigner:
    """A private Ed25519 key that signs notes under a name (a log's origin, a witness's name)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _is_valid_key_name(name):
            raise InputError(f"key name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self._private_key = private_key
        public_key = private_key.public_key().public_bytes_raw()
        self.verifier = NoteVerifier(name, key_id(name, public_key), public_key)
        self.key_id = self.verifier.key_id

    @classmethod
    def from_private_key(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``.

        Raises:
            InputError: the text is malformed or its key ID does not match the key.
        """
        skey = skey.strip()
        parts = skey[len(_PRIVATE_KEY_PREFIX) :].split("+", 2) if skey.startswith(_PRIVATE_KEY_PREFIX) else []
        if len(parts) != 3:
            raise InputError("signer key must look like PRIVATE+KEY+<name>+<key ID>+<base64 key>")
        name, claimed_id = _parse_key_name_and_id(parts[0], parts[1], "signer key")
        seed = _decode_key_material(parts[2], f"signer key {name!r}")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != claimed_id:
            raise InputError(f"signer key {name!r}: key ID {parts[1]} does not match the key")
        return signer

    def private_key_text(self) -> str:
        """The secret text form ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``; keep it secret."""
        material = bytes([ED25519_SIGNATURE_TYPE]) + self._private_key.private_bytes_raw()
        return f"{_PRIVATE_KEY_PREFIX}{self.name}+{self.key_id:08x}+{base64.b64encode(material).decode()}"

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id:08x})"


def generate_signer(name: str) -> NoteSigner:
    """A fresh Ed25519 signer named ``name``; publish ``signer.verifier.vkey``, store ``private_key_text()``."""
    return NoteSigner(name, Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Checkpoint:
    """The body of a checkpoint: which log, how many leaves, and the root hash at that size."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The note text (ending in a newline) that signers sign.

        Raises:
            InputError: a field cannot be written as a checkpoint line.
        """
        lines = [self.origin, str(self.tree_size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        if self.tree_size < 0 or len(self.root_hash) != HASH_SIZE:
            raise InputError(f"checkpoint needs a size >= 0 and a {HASH_SIZE}-byte root hash")
        if any(not line or "\n" in line or _CONTROL_EXCEPT_NEWLINE.search(line) for line in lines):
            raise InputError("checkpoint lines (origin, extensions) must be non-empty single lines")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signatures checked out, with the names of the keys that signed it."""

    checkpoint: Checkpoint
    log_signers: tuple[str, ...]
    witness_signers: tuple[str, ...]


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_id: int
    signature: bytes


def _split_note(note: str) -> tuple[str, list[_SignatureLine]]:
    """Split a signed note into its text and signature lines, checking the envelope's syntax."""
    if _CONTROL_EXCEPT_NEWLINE.search(note):
        raise CheckpointError("note contains control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    if not signature_block.endswith("\n"):
        raise CheckpointError("note has no signatures, or its last signature line lacks a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES} are read")
    signatures = []
    for line in lines:
        name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        if not line.startswith(_SIGNATURE_PREFIX) or not _is_valid_key_name(name) or len(blob) < 5:
            raise CheckpointError(f"malformed signature line {line[:80]!r}")
        signatures.append(_SignatureLine(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    return text, signatures


def note_signer_names(note: str) -> list[str]:
    """Names on a signed note's signature lines (without checking them), in order."""
    _, _, block = note.rpartition("\n\n")
    return [line.removeprefix(_SIGNATURE_PREFIX).split(" ", 1)[0] for line in block.splitlines() if line]


def _parse_body(text: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise CheckpointError("checkpoint body needs origin, tree size and root hash lines, none empty")
    origin, size_line, root_line = lines[:3]
    if not _TREE_SIZE.fullmatch(size_line):
        raise CheckpointError(f"checkpoint tree size {size_line[:40]!r} is not a decimal without leading zeros")
    try:
        root_hash = base64.b64decode(root_line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"checkpoint root hash {root_line[:60]!r} is not base64") from exc
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root_line:
        raise CheckpointError(f"checkpoint root hash {root_line[:60]!r} is not a canonical {HASH_SIZE}-byte hash")
    return Checkpoint(origin, int(size_line), root_hash, tuple(lines[3:]))


def _signature_line(text: str, signer: NoteSigner) -> str:
    blob = signer.key_id.to_bytes(4, "big") + signer.sign(text.encode())
    return f"{_SIGNATURE_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n"


def sign_note(text: str, signer: NoteSigner) -> str:
    """A signed note of ``text`` (which must end in a newline) with one signature line by ``signer``.

    Raises:
        InputError: ``text`` does not end in a newline or contains control characters other than newline.
    """
    if not text.endswith("\n") or _CONTROL_EXCEPT_NEWLINE.search(text):
        raise InputError("note text must end in a newline and contain no other control characters")
    return text + "\n" + _signature_line(text, signer)


def sign_checkpoint(
    origin: str, tree_size: int, root_hash: bytes, signer: NoteSigner, *, extensions: Iterable[str] = ()
) -> str:
    """The signed checkpoint note of a log at ``tree_size`` with root ``root_hash``.

    The signer's name SHOULD equal ``origin`` (C2SP tlog-checkpoint). Sign only roots that are
    consistent with every checkpoint the log signed before.

    Raises:
        InputError: a field cannot be written as a checkpoint line.
    """
    return sign_note(Checkpoint(origin, tree_size, root_hash, tuple(extensions)).body(), signer)


def cosign(note: str, witness: NoteSigner) -> str:
    """Add ``witness``'s signature line to a signed checkpoint note.

    A witness cosigns to state it has seen this checkpoint; it must first check the log's signature
    (``verify_checkpoint``) and consistency with the last checkpoint it cosigned.

    Raises:
        CheckpointError: the note is malformed or already carries this witness key's signature.
    """
    text, signatures = _split_note(note)
    _parse_body(text)
    if any((line.name, line.key_id) == (witness.name, witness.key_id) for line in signatures):
        raise CheckpointError(f"note is already signed by {witness.name!r} ({witness.key_id:08x})")
    return note + _signature_line(text, witness)


def verify_checkpoint(
    note: str, log_keys: Iterable[NoteVerifier], *, origin: str, witnesses: Iterable[NoteVerifier] = ()
) -> VerifiedCheckpoint:
    """Verify a checkpoint note: a log signature, every required witness, and the body's format.

    Signatures by keys not given here are ignored (signed-note rule). A signature by a given key that
    does not verify rejects the whole note.

    Args:
        note: the signed note text.
        log_keys: the log's trusted keys, old and current; one valid signature among them is required.
        origin: the origin line the checkpoint must carry (which log it is).
        witnesses: keys of required witnesses. Keys sharing a name are alternatives (a rotated witness
            key); every distinct witness name needs one valid signature.

    Raises:
        CheckpointError: malformed note or body, wrong origin, a bad signature from a known key, no valid
            log signature, or a required witness signature missing.
        InputError: two different trusted keys share a name and key ID.
    """
    log_keys, witnesses = list(log_keys), list(witnesses)
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in [*log_keys, *witnesses]:
        other = known.setdefault((verifier.name, verifier.key_id), verifier)
        if other.public_key != verifier.public_key:
            raise InputError(
                f"trusted keys are ambiguous: two keys named {verifier.name!r} share ID {verifier.key_id:08x}"
            )
    text, signatures = _split_note(note)
    message = text.encode()
    verified: set[tuple[str, int]] = set()
    for line in signatures:
        known_key = known.get((line.name, line.key_id))
        if known_key is None:
            continue
        if (line.name, line.key_id) in verified:
            raise CheckpointError(f"note carries two signatures by {line.name!r} ({line.key_id:08x})")
        if not known_key.verify(message, line.signature):
            raise CheckpointError(f"signature by {line.name!r} ({line.key_id:08x}) does not verify")
        verified.add((line.name, line.key_id))
    log_signers = tuple(dict.fromkeys(k.name for k in log_keys if (k.name, k.key_id) in verified))
    if not log_signers:
        raise CheckpointError("checkpoint carries no valid signature by a trusted log key")
    witness_signers = tuple(dict.fromkeys(k.name for k in witnesses if (k.name, k.key_id) in verified))
    missing = sorted({k.name for k in witnesses} - set(witness_signers))
    if missing:
        raise CheckpointError(f"checkpoint lacks the cosignature of required witness(es) {missing}")
    checkpoint = _parse_body(text)
    if checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin[:80]!r} is not the expected {origin!r}")
    return VerifiedCheckpoint(checkpoint, log_signers, witness_signers)
