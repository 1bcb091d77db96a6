"""RFC 6962 / RFC 9162 conformance: the transparency-dev test vectors and a naive reference tree.

The reference functions below transcribe RFC 9162 §2.1 literally (recursive MTH, PATH, PROOF over the
leaf data) and share no code with ``onshore.ledger.merkle``; ``test_store`` reuses them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onshore.ledger.merkle import (
    EMPTY_ROOT,
    ProofError,
    SubtreeCoord,
    generate_consistency_proof,
    generate_inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    root_from_source,
    verify_consistency,
    verify_inclusion,
)

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rfc6962-vectors"
IN_CI = os.environ.get("CI", "").lower() == "true"


# --- naive reference (RFC 9162 §2.1, transcribed) ----------------------------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf *data*."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + ref_root(leaves[:k]) + ref_root(leaves[k:])).digest()


def ref_inclusion_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return ref_inclusion_proof(m, leaves[:k]) + [ref_root(leaves[k:])]
    return ref_inclusion_proof(m - k, leaves[k:]) + [ref_root(leaves[:k])]


def ref_consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""

    def subproof(m: int, d: Sequence[bytes], whole: bool) -> list[bytes]:
        if m == len(d):
            return [] if whole else [ref_root(d)]
        k = _split(len(d))
        if m <= k:
            return subproof(m, d[:k], whole) + [ref_root(d[k:])]
        return subproof(m - k, d[k:], False) + [ref_root(d[:k])]

    return subproof(m, leaves, True)


def ref_leaves(count: int) -> list[bytes]:
    """Distinct, variable-length leaf data."""
    return [b"leaf-%d-" % i + bytes(range(i % 7)) for i in range(count)]


class DictSubtreeSource:
    """Complete-subtree hashes computed from leaf data by the reference (no store involved)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.calls = 0

    def subtree_hashes(self, coords: Sequence[SubtreeCoord]) -> Mapping[SubtreeCoord, bytes]:
        self.calls += 1
        return {(lv, i): ref_root(self.leaves[i << lv : (i + 1) << lv]) for lv, i in coords}


# --- the vectors --------------------------------------------------------------------------------------


def _vector_files(kind: str) -> list[Any]:
    folder = VECTORS_DIR / kind
    if not folder.is_dir():
        return [pytest.param(None, id=f"{kind}-vectors-missing")]
    return [pytest.param(p, id=str(p.relative_to(folder))) for p in sorted(folder.rglob("*.json"))]


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        if IN_CI:
            pytest.fail(f"RFC 6962 vectors not found at {VECTORS_DIR} (CI=true)")
        pytest.skip(f"RFC 6962 vectors not found at {VECTORS_DIR}")
    return json.loads(path.read_text())


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


@pytest.mark.parametrize("path", _vector_files("inclusion"))
def test_inclusion_vector_verdict_matches_want_err(path: Path | None) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"))
def test_consistency_vector_verdict_matches_want_err(path: Path | None) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def load_roots() -> tuple[list[bytes], list[bytes]]:
    """The 8 standard leaf inputs and the expected roots of trees of size 0..8 (roots.json)."""
    path = VECTORS_DIR / "roots.json"
    data = _load(path if path.is_file() else None)
    leaves = [bytes.fromhex(h) for h in data["leaf_inputs_hex"]]
    return leaves, [bytes.fromhex(h) for h in data["root_hashes_hex_by_tree_size"]]


def test_roots_json_reproduced_by_root_from_leaf_hashes() -> None:
    leaves, roots = load_roots()
    assert len(roots) == len(leaves) + 1
    for size, expected in enumerate(roots):
        assert root_from_leaf_hashes([leaf_hash(d) for d in leaves[:size]]) == expected
        assert ref_root(leaves[:size]) == expected


# --- generation over a subtree source, against the reference --------------------------------------------


def test_generated_proofs_match_reference_and_verify_for_all_pairs_up_to_40() -> None:
    leaves = ref_leaves(40)
    source = DictSubtreeSource(leaves)
    for size in range(1, 41):
        root = ref_root(leaves[:size])
        assert root_from_source(size, source) == root
        for index in range(size):
            proof = generate_inclusion_proof(index, size, source)
            assert proof == ref_inclusion_proof(index, leaves[:size])
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
        for size1 in range(1, size + 1):
            proof = generate_consistency_proof(size1, size, source)
            assert proof == ref_consistency_proof(size1, leaves[:size])
            verify_consistency(size1, size, proof, ref_root(leaves[:size1]), root)


def test_proof_generation_reads_the_source_once() -> None:
    source = DictSubtreeSource(ref_leaves(1000))
    generate_inclusion_proof(517, 999, source)
    generate_consistency_proof(300, 999, source)
    assert source.calls == 2


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=600),
    data=st.data(),
)
def test_any_altered_proof_is_rejected(size: int, data: st.DataObject) -> None:
    leaves = ref_leaves(size)
    root = ref_root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = ref_inclusion_proof(index, leaves)
    verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        altered = list(proof)
        altered[position] = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(altered[position]))
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(leaves[index]), index, size, altered, root)
    other_index = data.draw(st.integers(min_value=0, max_value=size))
    if other_index != index:
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(leaves[index]), other_index, size, proof, root)
    size1 = data.draw(st.integers(min_value=1, max_value=size))
    consistency = ref_consistency_proof(size1, leaves)
    verify_consistency(size1, size, consistency, ref_root(leaves[:size1]), root)
    with pytest.raises(ProofError):
        verify_consistency(size1, size, consistency, ref_root(leaves[:size1])[::-1], root)
