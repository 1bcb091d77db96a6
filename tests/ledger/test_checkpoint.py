"""Signed-note checkpoints: the Go reference vector, signing, verification, witnesses, key rotation."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from onshore.errors import InputError
from onshore.ledger import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    cosign,
    generate_signer,
    key_id,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)

# The example key and note of golang.org/x/mod/sumdb/note (its package documentation and tests).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "onshore.example/cn-guizhou"
ROOT = hashlib.sha256(b"some root").digest()


@pytest.fixture(scope="module")
def log_signer() -> NoteSigner:
    return generate_signer(ORIGIN)


@pytest.fixture(scope="module")
def regulator() -> NoteSigner:
    return generate_signer("regulator.example/witness")


def test_go_reference_keys_and_signature_are_reproduced_byte_for_byte() -> None:
    signer = NoteSigner.from_private_key(GO_SKEY)
    assert signer.verifier.vkey == GO_VKEY
    assert NoteVerifier.from_vkey(GO_VKEY) == signer.verifier
    assert signer.private_key_text() == GO_SKEY
    assert f"{key_id('PeterNeumann', signer.verifier.public_key):08x}" == "c74f20a3"
    assert sign_note(GO_TEXT, signer) == GO_TEXT + "\n" + GO_SIGNATURE_LINE


def test_signed_checkpoint_has_the_c2sp_layout(log_signer: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 20852163, ROOT, log_signer)
    body, signatures = note.split("\n\n")
    assert body.split("\n") == [ORIGIN, "20852163", base64.b64encode(ROOT).decode()]
    name, blob = signatures.removeprefix("\u2014 ").rstrip("\n").split(" ")
    assert name == ORIGIN
    raw = base64.b64decode(blob)
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + log_signer.verifier.public_key).digest()[:4]
    assert len(raw) == 4 + 64


def test_checkpoint_verifies_with_the_log_key(log_signer: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, log_signer)
    verified = verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN)
    assert verified.checkpoint == Checkpoint(ORIGIN, 42, ROOT)
    assert verified.log_signers == (ORIGIN,)
    assert verified.witness_signers == ()


def test_empty_tree_checkpoint_is_size_zero(log_signer: NoteSigner) -> None:
    empty_root = hashlib.sha256(b"").digest()
    note = sign_checkpoint(ORIGIN, 0, empty_root, log_signer)
    assert verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN).checkpoint.tree_size == 0


def test_wrong_key_is_rejected(log_signer: NoteSigner) -> None:
    impostor = generate_signer(ORIGIN)  # same name, different key: its key ID differs, so it is unknown
    note = sign_checkpoint(ORIGIN, 42, ROOT, impostor)
    with pytest.raises(CheckpointError, match="no valid signature"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n42\n", "\n43\n"),
        ("onshore.example/cn-guizhou\n", "onshore.example/cn-shanghai\n"),
        (base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[::-1]).decode()),
    ],
    ids=["size", "origin", "root"],
)
def test_altered_body_is_rejected(log_signer: NoteSigner, old: str, new: str) -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, log_signer)
    assert old in note
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(note.replace(old, new, 1), [log_signer.verifier], origin=ORIGIN)


def test_altered_signature_is_rejected(log_signer: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, log_signer)
    body, line = note.split("\n\n")
    prefix, blob = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1
    forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(forged, [log_signer.verifier], origin=ORIGIN)


def test_checkpoint_of_another_log_is_rejected(log_signer: NoteSigner) -> None:
    note = sign_checkpoint("onshore.example/eu-frankfurt", 42, ROOT, log_signer)
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN)


def test_required_witness_cosignature_present_verifies(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), regulator)
    verified = verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier])
    assert verified.witness_signers == ("regulator.example/witness",)


def test_required_witness_cosignature_absent_is_rejected(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, log_signer)
    with pytest.raises(CheckpointError, match="regulator.example/witness"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier])


def test_witness_cosignature_by_another_key_does_not_count(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    fake_regulator = generate_signer("regulator.example/witness")
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), fake_regulator)
    with pytest.raises(CheckpointError, match="lacks the cosignature"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier])


def test_a_witness_alone_cannot_stand_in_for_the_log(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, regulator)
    with pytest.raises(CheckpointError, match="no valid signature"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier])


def test_cosigning_twice_with_one_key_is_refused(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), regulator)
    with pytest.raises(CheckpointError, match="already signed"):
        cosign(note, regulator)


def test_each_named_witness_is_required(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    auditor = generate_signer("auditor.example/witness")
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), regulator)
    with pytest.raises(CheckpointError, match="auditor.example/witness"):
        verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier, auditor.verifier])
    both = cosign(note, auditor)
    verified = verify_checkpoint(
        both, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier, auditor.verifier]
    )
    assert set(verified.witness_signers) == {"regulator.example/witness", "auditor.example/witness"}


def test_log_key_rotation_keeps_old_checkpoints_verifiable(log_signer: NoteSigner) -> None:
    rotated = generate_signer(ORIGIN)
    old_note = sign_checkpoint(ORIGIN, 10, ROOT, log_signer)
    new_note = sign_checkpoint(ORIGIN, 20, ROOT, rotated)
    trusted = [log_signer.verifier, rotated.verifier]
    assert verify_checkpoint(old_note, trusted, origin=ORIGIN).checkpoint.tree_size == 10
    assert verify_checkpoint(new_note, trusted, origin=ORIGIN).checkpoint.tree_size == 20
    with pytest.raises(CheckpointError):
        verify_checkpoint(old_note, [rotated.verifier], origin=ORIGIN)


def test_rotated_witness_keys_under_one_name_are_alternatives(log_signer: NoteSigner, regulator: NoteSigner) -> None:
    rotated_regulator = generate_signer("regulator.example/witness")
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), rotated_regulator)
    verified = verify_checkpoint(
        note, [log_signer.verifier], origin=ORIGIN, witnesses=[regulator.verifier, rotated_regulator.verifier]
    )
    assert verified.witness_signers == ("regulator.example/witness",)


def test_unknown_signatures_are_ignored(log_signer: NoteSigner) -> None:
    stranger = generate_signer("stranger.example")
    note = cosign(sign_checkpoint(ORIGIN, 42, ROOT, log_signer), stranger)
    garbage = note + "\u2014 stranger.example " + base64.b64encode(b"\x00" * 68).decode() + "\n"
    assert verify_checkpoint(garbage, [log_signer.verifier], origin=ORIGIN).log_signers == (ORIGIN,)


def test_private_key_text_round_trips() -> None:
    signer = generate_signer("onshore.example/cn-beijing")
    again = NoteSigner.from_private_key(signer.private_key_text())
    assert again.verifier == signer.verifier
    assert "PRIVATE" not in repr(signer)


def _note_lines(*lines: str) -> str:
    return "\n".join(lines)


def _valid_note(signer: NoteSigner) -> str:
    return sign_checkpoint(ORIGIN, 42, ROOT, signer)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n"),  # no blank line before the signatures
        lambda n: n.rstrip("\n"),  # last signature line without newline
        lambda n: n.split("\n\n")[0] + "\n\n",  # no signatures at all
        lambda n: n.replace("\u2014 ", "- "),  # not an em dash
        lambda n: n.replace("42", "4\r2"),  # control character
        lambda n: n + "\u2014 bad+name AAAAAAAA\n",  # '+' in a key name
        lambda n: n + "\u2014 name !!!!\n",  # not base64
        lambda n: n + "\u2014 name AAAA\n",  # too short to hold key ID and signature
        lambda n: n + ("\u2014 x " + base64.b64encode(b"\x00" * 68).decode() + "\n") * 100,  # too many
    ],
    ids=[
        "no-blank-line",
        "no-final-newline",
        "no-signatures",
        "hyphen-not-em-dash",
        "control-character",
        "plus-in-name",
        "bad-base64",
        "short-signature",
        "over-100-signatures",
    ],
)
def test_malformed_notes_are_rejected(log_signer: NoteSigner, mangle: Callable[[str], str]) -> None:
    with pytest.raises(CheckpointError):
        verify_checkpoint(mangle(_valid_note(log_signer)), [log_signer.verifier], origin=ORIGIN)


@pytest.mark.parametrize(
    "body",
    [
        _note_lines(ORIGIN, "042", base64.b64encode(ROOT).decode()) + "\n",
        _note_lines(ORIGIN, "-1", base64.b64encode(ROOT).decode()) + "\n",
        _note_lines(ORIGIN, "42", base64.b64encode(ROOT[:31]).decode()) + "\n",
        _note_lines(ORIGIN, "42") + "\n",
        _note_lines(ORIGIN, "42", base64.b64encode(ROOT).decode(), "", "ext") + "\n",
    ],
    ids=["leading-zero", "negative", "short-root", "no-root-line", "empty-extension"],
)
def test_signed_but_malformed_bodies_are_rejected(log_signer: NoteSigner, body: str) -> None:
    with pytest.raises(CheckpointError):
        verify_checkpoint(sign_note(body, log_signer), [log_signer.verifier], origin=ORIGIN)


def test_extension_lines_are_kept(log_signer: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, log_signer, extensions=["timestamp 1700000000"])
    assert verify_checkpoint(note, [log_signer.verifier], origin=ORIGIN).checkpoint.extensions == (
        "timestamp 1700000000",
    )


@pytest.mark.parametrize(
    "text",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # key ID does not match
        "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not type 0x01
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short key ID
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "PeterNeumann",
    ],
)
def test_malformed_verifier_keys_are_rejected(text: str) -> None:
    with pytest.raises(InputError):
        NoteVerifier.from_vkey(text)


@pytest.mark.parametrize(
    "text",
    [
        GO_SKEY.replace("PRIVATE+KEY+", ""),
        GO_SKEY.replace("c74f20a3", "c74f20a4"),
        GO_SKEY[:-4],
    ],
    ids=["no-prefix", "wrong-key-id", "truncated"],
)
def test_malformed_signer_keys_are_rejected(text: str) -> None:
    with pytest.raises(InputError):
        NoteSigner.from_private_key(text)


def test_checkpoint_fields_are_validated(log_signer: NoteSigner) -> None:
    with pytest.raises(InputError):
        sign_checkpoint(ORIGIN, 1, ROOT[:16], log_signer)
    with pytest.raises(InputError):
        sign_checkpoint("two\nlines", 1, ROOT, log_signer)
    with pytest.raises(InputError):
        sign_checkpoint(ORIGIN, -1, ROOT, log_signer)
    with pytest.raises(InputError):
        generate_signer("has space")
