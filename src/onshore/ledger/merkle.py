"""RFC 6962 / RFC 9162 Merkle tree hashing, proof verification and proof generation.

The tree over ``n`` leaves is the one of RFC 9162 §2.1.1: ``leaf_hash(d) = SHA-256(0x00 || d)``,
``node_hash(l, r) = SHA-256(0x01 || l || r)``, the empty tree hashes to ``SHA-256("")``, and a tree of
``n > 1`` leaves splits at the largest power of two below ``n``.

Every node of that tree is either a *complete subtree* (``2**level`` leaves starting at
``index * 2**level``), addressed here as ``(level, index)``, or a range ``[start, size)`` on the tree's
right edge whose hash folds the complete subtrees that tile it. A store therefore only needs to keep
complete subtrees; proof generation works over any ``SubtreeHashSource`` that can hand back a batch of
them at once (the SQL store answers with one query).

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step, and
raises ``ProofError`` with the reason when a proof does not hold.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from onshore.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeCoord = tuple[int, int]
"""A complete subtree: ``(level, index)``, covering leaves ``[index << level, (index + 1) << level)``."""

LeafRange = tuple[int, int]
"""Half-open leaf range ``[start, end)`` of one node of the tree."""


class SubtreeHashSource(Protocol):
    """Where proof generation reads complete-subtree hashes from."""

    def subtree_hashes(self, coords: Sequence[SubtreeCoord]) -> Mapping[SubtreeCoord, bytes]:
        """Return the hash of every requested complete subtree (level 0 = leaf hashes), in one round trip."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes of many entries (the batch form of ``leaf_hash``)."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + entry).digest() for entry in entries]


# --- tree shape -------------------------------------------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    """The split point ``k`` of RFC 9162 §2.1.1: the largest power of two strictly less than ``n > 1``."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees_of_range(start: int, end: int) -> list[SubtreeCoord]:
    """The complete subtrees that tile ``[start, end)``, largest first.

    ``start`` must be aligned to the largest of them, which holds for every node of an RFC 6962 tree
    (perfect subtrees and right-edge ranges alike). ``subtrees_of_range(0, n)`` is the tree's frontier.
    """
    coords: list[SubtreeCoord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"range [{start}, {end}) is not a node of an RFC 6962 tree")
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def inclusion_path_ranges(index: int, size: int) -> list[LeafRange]:
    """The leaf ranges whose hashes form PATH(index, D[size]) (RFC 9162 §2.1.3.1), bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[LeafRange] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    ranges.reverse()
    return ranges


def consistency_path_ranges(size1: int, size2: int) -> list[LeafRange]:
    """The leaf ranges whose hashes form PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1), bottom-up.

    Empty when ``size1 == size2``; ``size1`` must be positive (a proof from the empty tree is meaningless).
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}; need 0 < size1 <= size2")
    ranges: list[LeafRange] = []
    start, end = 0, size2
    whole_old_tree_is_known = True  # the ``b`` flag of SUBPROOF: the verifier already holds MTH(D[0:size1])
    while end != size1:
        split = start + _largest_power_of_two_below(end - start)
        if size1 <= split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
            whole_old_tree_is_known = False
    if not whole_old_tree_is_known:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


# --- hashing over a subtree source -------------------------------------------------------------------


def fold_subtree_hashes(hashes: Sequence[bytes]) -> bytes:
    """Hash of a node whose complete subtrees, largest first, have these hashes (a right fold)."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hashes(ranges: Sequence[LeafRange], source: SubtreeHashSource) -> list[bytes]:
    """Hashes of many tree nodes, reading every complete subtree they need in one ``source`` call."""
    tilings = [subtrees_of_range(start, end) for start, end in ranges]
    wanted = list(dict.fromkeys(coord for tiling in tilings for coord in tiling))
    found = source.subtree_hashes(wanted) if wanted else {}
    return [fold_subtree_hashes([found[coord] for coord in tiling]) for tiling in tilings]


def root_from_source(size: int, source: SubtreeHashSource) -> bytes:
    """Root hash of the tree of ``size`` leaves, from its frontier of complete subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return range_hashes([(0, size)], source)[0]


def generate_inclusion_proof(index: int, size: int, source: SubtreeHashSource) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, reading complete subtrees from ``source``."""
    return range_hashes(inclusion_path_ranges(index, size), source)


def generate_consistency_proof(size1: int, size2: int, source: SubtreeHashSource) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1, reading complete subtrees from ``source``."""
    return range_hashes(consistency_path_ranges(size1, size2), source)


def new_complete_subtrees(
    size: int, frontier: Mapping[int, bytes], new_leaf_hashes: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """The complete subtrees (level >= 1) that appending ``new_leaf_hashes`` to a tree of ``size`` creates.

    Args:
        size: leaves already in the tree.
        frontier: level -> hash of the tree's frontier, i.e. of subtree ``(level, (size >> level) - 1)``
            for every bit ``level`` set in ``size`` (see ``subtrees_of_range(0, size)``).
        new_leaf_hashes: leaf hashes of the appended entries, in order.

    Returns:
        ``(level, index, hash)`` of every new complete subtree, level by level.
    """
    sha256 = hashlib.sha256
    created: list[tuple[int, int, bytes]] = []
    level_hashes, first_index, level = list(new_leaf_hashes), size, 0
    while level_hashes:
        if first_index & 1:  # the new nodes' first left sibling is an old one: the frontier at this level
            level_hashes.insert(0, frontier[level])
            first_index -= 1
        parents = [
            sha256(b"\x01" + level_hashes[i] + level_hashes[i + 1]).digest() for i in range(0, len(level_hashes) - 1, 2)
        ]
        first_index >>= 1
        level += 1
        created.extend((level, first_index + offset, digest) for offset, digest in enumerate(parents))
        level_hashes = parents
    return created


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1 for the given leaf hashes (empty sequence: ``SHA-256("")``)."""
    size = len(hashes)
    known = {(0, index): digest for index, digest in enumerate(hashes)}
    known.update(((level, index), digest) for level, index, digest in new_complete_subtrees(0, {}, hashes))
    return fold_subtree_hashes([known[coord] for coord in subtrees_of_range(0, size)])


class CompactRange:
    """The right edge of a growing RFC 6962 tree: one complete-subtree hash per set bit of the size.

    It recomputes a root from the leaves alone, one leaf at a time, in memory logarithmic in the size.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def append(self, digest: bytes) -> None:
        level = 0
        stack = self._stack
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
        stack.append((level, digest))
        self.size += 1

    def root(self) -> bytes:
        return fold_subtree_hashes([digest for _, digest in self._stack])


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) --------------------------------------------------------


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")


def _same_hash(calculated: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(calculated, expected)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with hash ``root``.

    Implements RFC 9162 §2.1.3.2. Every hash (leaf, root, proof element) must be 32 bytes.

    Raises:
        ProofError: the index is outside the tree, a hash has the wrong length, the proof has the wrong
            length, or the computed root differs from ``root``.
    """
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root hash")
    for position, element in enumerate(proof):
        _require_hash(element, f"inclusion proof element {position}")
    fn, sn, result = index, size - 1, leaf_hash
    for element in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof for leaf {index} of {size} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof for leaf {index} of {size} is too short ({len(proof)} hashes)")
    if not _same_hash(result, root):
        raise ProofError(f"inclusion proof for leaf {index} of {size} does not lead to the given root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` leaves with hash ``root1`` is a prefix of the tree ``(size2, root2)``.

    Implements RFC 9162 §2.1.4.2, which is defined for ``0 < size1 < size2``. Outside that range:
    ``size1 > size2`` and ``size1 == 0`` are rejected (a proof from the empty tree proves nothing);
    ``size1 == size2`` holds only with an empty proof and byte-identical roots.

    Raises:
        ProofError: the sizes are out of range, a hash has the wrong length, the proof has the wrong
            length, or either computed root differs from the given one.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"tree sizes must not be negative (got {size1}, {size2})")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is greater than size2 {size2}: a log never shrinks")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal ({size1}) but the consistency proof is not empty")
        if not _same_hash(root1, root2):
            raise ProofError(f"sizes are equal ({size1}) but the roots differ")
        return
    if not proof:
        raise ProofError(f"consistency proof from {size1} to {size2} is empty")
    _require_hash(root1, "root1")
    _require_hash(root2, "root2")
    for position, element in enumerate(proof):
        _require_hash(element, f"consistency proof element {position}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: the old root is itself a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_root = second_root = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {size1} to {size2} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            first_root = node_hash(element, first_root)
            second_root = node_hash(element, second_root)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second_root = node_hash(second_root, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from {size1} to {size2} is too short ({len(proof)} hashes)")
    if not _same_hash(first_root, root1):
        raise ProofError(f"consistency proof from {size1} to {size2} does not lead to root1")
    if not _same_hash(second_root, root2):
        raise ProofError(f"consistency proof from {size1} to {size2} does not lead to root2")
