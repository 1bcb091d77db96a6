"""The auditor's check of a region's log, trusting nothing the operator says but the log's public key.

It reads the log through a ``LedgerSource`` (``ledger.sources``): the HTTP API of a running onshore
(``HttpLedgerSource``) or an exported bundle file (``BundleLedgerSource``); it never touches the operator's
database or key store. Given the log's public key(s), and optionally a checkpoint trusted from an earlier check
and the witnesses whose cosignature is required, ``verify_ledger``:

1. checks the current checkpoint's signature (and origin) with the trusted log keys;
2. checks the trusted older checkpoint's signature and that the current tree extends it, both by the
   server's consistency proof and by recomputing the old root from the downloaded events;
3. checks the latest witnessed checkpoint's cosignatures and its consistency with the current tree;
4. downloads every event of the current tree and recomputes the root from them: equal to the signed root,
   this proves the inclusion of every event at once (RFC 9162 tree hashing, done here independently);
5. spot-checks the server's inclusion proofs (all of them with ``proofs=None``) against the signed root;
6. checks that every event has the lifecycle-event shape and carries no obvious personal data (unknown
   fields, free text, VIN-like strings: ``ledger.event_check``).

Everything wrong becomes a line in ``Verdict.failures``; ``LedgerSourceError`` is raised only when the
source cannot be read at all (unreachable server, refused token, unreadable bundle).
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onshore.errors import InputError, LedgerSourceError
from onshore.ledger.checkpoint import CheckpointError, NoteVerifier, verify_checkpoint
from onshore.ledger.event_check import EVENT_KINDS, event_problems
from onshore.ledger.merkle import CompactRange, ProofError, leaf_hash, verify_consistency, verify_inclusion
from onshore.ledger.sources import PAGE_SIZE, BundleLedgerSource, LedgerSource

MAX_LISTED_FAILURES = 50


@dataclass
class Verdict:
    """The outcome of a verification: what was checked, and every failure found."""

    source: str
    region: str
    origin: str | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    checkpoint_note: str | None = None
    log_signers: list[str] = field(default_factory=list)
    trusted_size: int | None = None
    witnessed_size: int | None = None
    witness_signers: list[str] = field(default_factory=list)
    events_checked: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    root_recomputed: bool = False
    inclusion_proofs_checked: int = 0
    consistency_proofs_checked: int = 0
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure_count == 0 and self.tree_size is not None

    def fail(self, message: str) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(message)
        elif len(self.failures) == MAX_LISTED_FAILURES:
            self.failures.append("... further failures not listed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "region": self.region,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint_note,
            "log_signers": self.log_signers,
            "trusted_size": self.trusted_size,
            "witnessed_size": self.witnessed_size,
            "witness_signers": self.witness_signers,
            "events_checked": self.events_checked,
            "events_by_kind": self.events_by_kind,
            "root_recomputed": self.root_recomputed,
            "inclusion_proofs_checked": self.inclusion_proofs_checked,
            "consistency_proofs_checked": self.consistency_proofs_checked,
            "failure_count": self.failure_count,
            "failures": self.failures,
            "warnings": self.warnings,
        }


def parse_vkeys(texts: Iterable[str]) -> list[NoteVerifier]:
    """Public keys from vkey texts or files holding them (one per line; blank lines and ``#`` comments skipped).

    Raises:
        InputError: a key is malformed, or a file holds none.
    """
    keys: list[NoteVerifier] = []
    for text in texts:
        lines = [text]
        path = Path(text)
        if "+" not in text or path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{text!r} is neither a vkey (<name>+<id>+<key>) nor a readable key file") from exc
            lines = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if not lines:
                raise InputError(f"key file {text} holds no vkey")
        keys.extend(NoteVerifier.from_vkey(line) for line in lines)
    return keys


def _sample(size: int, proofs: int | None, seed: int | None) -> list[int]:
    if size == 0:
        return []
    if proofs is None or proofs >= size:
        return list(range(size))
    ends = [0, size - 1][: max(proofs, 0)]
    middle = random.Random(seed).sample(range(1, size - 1), max(proofs - 2, 0))
    return sorted({*ends, *middle})


def _check_note(
    verdict: Verdict, what: str, note: str, keys: Sequence[NoteVerifier], origin: str, witnesses: Sequence[NoteVerifier]
) -> tuple[int, bytes, list[str], list[str]] | None:
    try:
        checked = verify_checkpoint(note, keys, origin=origin, witnesses=witnesses)
    except (CheckpointError, InputError) as exc:
        verdict.fail(f"{what}: {exc.message}")
        return None
    signers = [f"{k.name}+{k.key_id:08x}" for k in keys if k.name in checked.log_signers and _has_sig(note, k)]
    wsigners = [
        f"{k.name}+{k.key_id:08x}" for k in witnesses if k.name in checked.witness_signers and _has_sig(note, k)
    ]
    return checked.checkpoint.tree_size, checked.checkpoint.root_hash, signers, wsigners


def _has_sig(note: str, key: NoteVerifier) -> bool:
    prefix = f"\u2014 {key.name} "
    for line in note.rpartition("\n\n")[2].splitlines():
        if line.startswith(prefix):
            try:
                blob = base64.b64decode(line[len(prefix) :], validate=True)
            except (binascii.Error, ValueError):
                continue
            if int.from_bytes(blob[:4], "big") == key.key_id:
                return True
    return False


def verify_ledger(
    source: LedgerSource,
    log_keys: Sequence[NoteVerifier],
    *,
    trusted_checkpoint: str | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    proofs: int | None = 64,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Verdict:
    """Verify a region's log from ``source`` against the trusted ``log_keys``.

    Args:
        source: where to read the log (HTTP API or bundle).
        log_keys: the log's public keys, obtained out of band (all versions the auditor accepts); they must
            share one name, the log's origin.
        trusted_checkpoint: a checkpoint note kept from an earlier verification; the log must extend it.
        witnesses: witness keys whose cosignature the latest witnessed checkpoint must carry.
        proofs: how many of the source's inclusion proofs to check (first, last and random ones); None: all.
        seed: seed of the random choice of proofs (tests).
        progress: called with ``(events downloaded, total)`` after each page.

    Returns:
        The verdict; ``verdict.ok`` is true only when no check failed.

    Raises:
        InputError: no log key, or keys of several logs.
        LedgerSourceError: the source cannot be read at all.
    """
    names = {key.name for key in log_keys}
    if len(names) != 1:
        raise InputError(
            "give the public key(s) of exactly one log" + (f"; got keys of {sorted(names)}" if names else "")
        )
    origin = names.pop()
    verdict = Verdict(source=source.describe(), region=source.region, origin=origin)
    try:
        notes = source.checkpoints()
    except LedgerSourceError as exc:
        status = (exc.details or {}).get("status") if isinstance(exc.details, dict) else None
        if status is None or status < 500 or status == 503:
            raise
        verdict.fail(f"the server could not give a checkpoint: {exc.message}")
        return verdict

    head = _check_note(verdict, "current checkpoint", notes.current, log_keys, origin, ())
    if head is None:
        return verdict
    size, root, verdict.log_signers, _ = head
    verdict.tree_size, verdict.root_hash, verdict.checkpoint_note = size, base64.b64encode(root).decode(), notes.current

    prefixes: dict[int, tuple[str, bytes]] = {}  # size -> (what, signed root) to compare with recomputed roots
    if trusted_checkpoint is not None:
        trusted = _check_note(verdict, "trusted checkpoint", trusted_checkpoint, log_keys, origin, ())
        if trusted is not None:
            verdict.trusted_size = trusted[0]
            _check_prefix(verdict, source, "trusted checkpoint", trusted[0], trusted[1], size, root, prefixes)
    if witnesses:
        witnessed_note = notes.current if _all_witnesses_signed(notes.current, witnesses) else notes.witnessed
        if witnessed_note is None:
            verdict.fail("no checkpoint cosigned by the required witness(es) is published")
        else:
            witnessed = _check_note(verdict, "witnessed checkpoint", witnessed_note, log_keys, origin, witnesses)
            if witnessed is not None:
                verdict.witnessed_size, verdict.witness_signers = witnessed[0], witnessed[3]
                _check_prefix(verdict, source, "witnessed checkpoint", witnessed[0], witnessed[1], size, root, prefixes)

    sample = _sample(size, proofs, seed)
    sampled_hashes = _download_and_recompute(verdict, source, size, root, set(sample), prefixes, progress)
    if sampled_hashes is not None:
        _check_inclusion(verdict, source, size, root, sample, sampled_hashes)
    if isinstance(source, BundleLedgerSource) and source.extra_entries(size):
        verdict.fail(f"bundle holds {source.extra_entries(size)} entries beyond its checkpoint's size {size}")
    return verdict


def _all_witnesses_signed(note: str, witnesses: Sequence[NoteVerifier]) -> bool:
    """Whether every required witness name (keys sharing a name are alternatives) has a signature line."""
    names = {key.name for key in witnesses}
    return all(any(_has_sig(note, key) for key in witnesses if key.name == name) for name in names)


def _check_prefix(
    verdict: Verdict,
    source: LedgerSource,
    what: str,
    old_size: int,
    old_root: bytes,
    size: int,
    root: bytes,
    prefixes: dict[int, tuple[str, bytes]],
) -> None:
    """The current tree (size, root) must extend the older signed one: proof from the source, recomputation later."""
    if old_size > size:
        verdict.fail(f"{what} is at size {old_size} but the log now has {size}: the log was truncated or forked")
        return
    if old_size == size:
        if old_root != root:
            verdict.fail(f"{what} and the current checkpoint have size {size} but different roots: a fork")
        return
    prefixes[old_size] = (what, old_root)
    if old_size == 0:
        return
    try:
        proof = source.consistency_proof(old_size, size)
        if proof is None:
            return
        verify_consistency(old_size, size, proof, old_root, root)
        verdict.consistency_proofs_checked += 1
    except (ProofError, LedgerSourceError) as exc:
        verdict.fail(f"consistency proof from the {what} (size {old_size}) to size {size}: {exc.message}")


def _download_and_recompute(
    verdict: Verdict,
    source: LedgerSource,
    size: int,
    root: bytes,
    sample: set[int],
    prefixes: dict[int, tuple[str, bytes]],
    progress: Callable[[int, int], None] | None,
) -> dict[int, bytes] | None:
    """Download every entry, check each, recompute the roots; returns the sampled leaves' hashes (None: aborted)."""
    tree = CompactRange()
    sampled: dict[int, bytes] = {}
    stops = sorted(prefixes)
    for start in range(0, size, PAGE_SIZE):
        end = min(start + PAGE_SIZE, size)
        try:
            entries = source.entries(start, end)
        except (ProofError, LedgerSourceError) as exc:
            verdict.fail(f"events [{start}, {end}) could not be read: {exc.message}")
            return None
        for index, entry in enumerate(entries, start):
            while stops and stops[0] == index:
                _compare_prefix(verdict, prefixes[stops.pop(0)], index, tree.root())
            digest = leaf_hash(entry)
            tree.append(digest)
            if index in sample:
                sampled[index] = digest
            kind, problems = event_problems(entry, verdict.region)
            verdict.events_by_kind[kind or "(none)"] = verdict.events_by_kind.get(kind or "(none)", 0) + 1
            for problem in problems:
                verdict.fail(f"event {index} {problem}")
            if kind is not None and kind not in EVENT_KINDS and len(verdict.warnings) < MAX_LISTED_FAILURES:
                verdict.warnings.append(f"event {index} has a kind this verifier does not know: {kind[:40]!r}")
        verdict.events_checked = end
        if progress is not None:
            progress(end, size)
    while stops:  # a prefix at the full size is compared with the current root in _check_prefix
        _compare_prefix(verdict, prefixes[stops.pop(0)], size, tree.root())
    verdict.root_recomputed = True
    if tree.root() != root:
        verdict.fail(
            f"the root recomputed from the {size} events differs from the signed root: "
            "events were changed, removed, reordered or inserted"
        )
    return sampled


def _compare_prefix(verdict: Verdict, signed: tuple[str, bytes], size: int, recomputed: bytes) -> None:
    what, old_root = signed
    if recomputed != old_root:
        verdict.fail(f"the first {size} events no longer give the root of the {what}: they were altered since")


def _check_inclusion(
    verdict: Verdict, source: LedgerSource, size: int, root: bytes, sample: list[int], hashes: dict[int, bytes]
) -> None:
    for index in sample:
        try:
            proof = source.inclusion_proof(index, size)
            if proof is None:
                return
            verify_inclusion(hashes[index], index, size, proof, root)
            verdict.inclusion_proofs_checked += 1
        except (ProofError, LedgerSourceError) as exc:
            verdict.fail(f"inclusion proof of event {index} in size {size}: {exc.message}")
