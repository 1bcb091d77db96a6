"""A region's Merkle log kept in SQL (SQLite or PostgreSQL) through SQLAlchemy Core.

Four tables, each keyed by region so several logs can share a database:

- ``ledger_entries(region, idx, entry)``: the event bytes of every leaf;
- ``ledger_leaves(region, idx, leaf_hash)``: level 0 of the tree;
- ``ledger_nodes(region, level, idx, hash)``: every *complete* subtree of level >= 1, written once when
  its last leaf arrives and never updated (a log of ``n`` leaves holds fewer than ``n`` of them);
- ``ledger_checkpoints``: the signed notes issued for the log (see ``onshore.ledger.checkpoint``).

Every method works inside the caller's ``Connection`` and transaction and never commits, so the caller
writes its own rows and their ledger events atomically. Appends read only the frontier (at most one
node per level) and write one executemany per table; roots and proofs read the O(log n) complete
subtrees they need in one query and fold right-edge subtrees in Python.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    TextClause,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError

from onshore.errors import InputError, LedgerIntegrityError, WriteConflictError
from onshore.ledger.merkle import (
    SubtreeCoord,
    fold_subtree_hashes,
    generate_consistency_proof,
    generate_inclusion_proof,
    leaf_hashes,
    new_complete_subtrees,
    root_from_source,
    subtrees_of_range,
)
from onshore.storage.schema import metadata
from onshore.storage.writes import bulk_insert

_RowId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("region", String(64), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("entry", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

ledger_leaves = Table(
    "ledger_leaves",
    metadata,
    Column("region", String(64), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("region", String(64), primary_key=True),
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("region", String(64), nullable=False, index=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
)

_AUDIT_CHUNK = 8192


@dataclass(frozen=True)
class AppendResult:
    """What one ``append_batch`` did: leaves ``[first_index, tree_size)`` now hash to ``root``."""

    first_index: int
    tree_size: int
    root: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint note as recorded for the log."""

    tree_size: int
    root_hash: bytes
    note: str


class _ConnectionSubtreeSource:
    """Complete-subtree hashes of one region, read through one connection (``SubtreeHashSource``)."""

    def __init__(self, log: MerkleLog, conn: Connection) -> None:
        self._log = log
        self._conn = conn

    def subtree_hashes(self, coords: Sequence[SubtreeCoord]) -> Mapping[SubtreeCoord, bytes]:
        return self._log._fetch_subtrees(self._conn, coords)


class MerkleLog:
    """The append-only Merkle log of one region, stored in the ``ledger_*`` tables.

    Args:
        region: the region whose log this is (``cn-guizhou``); rows of other regions are never touched.
    """

    def __init__(self, region: str) -> None:
        if not region or len(region) > 64:
            raise InputError(f"ledger region {region!r} must be 1 to 64 characters")
        self.region = region

    # --- writing -----------------------------------------------------------------------------------

    def append_batch(self, conn: Connection, entries: list[bytes]) -> AppendResult:
        """Append entries as consecutive leaves, inside the caller's transaction.

        Writes the entries, their leaf hashes and every complete subtree they finish, one executemany
        per table. Nothing is committed here.

        Raises:
            WriteConflictError: another transaction appended to this region concurrently (it did not hold the
                region's write lock); roll back and run the transaction again.
            LedgerIntegrityError: a frontier node of the stored tree is missing.
        """
        size = self.tree_size(conn)
        frontier_coords = subtrees_of_range(0, size)
        stored_frontier = self._fetch_subtrees(conn, frontier_coords)
        if not entries:
            return AppendResult(size, size, self._fold(frontier_coords, stored_frontier))
        hashes = leaf_hashes(entries)
        created = new_complete_subtrees(
            size, {level: stored_frontier[(level, idx)] for level, idx in frontier_coords}, hashes
        )
        region = self.region
        try:
            bulk_insert(conn, ledger_leaves, [(region, size + i, digest) for i, digest in enumerate(hashes)])
            bulk_insert(conn, ledger_entries, [(region, size + i, entry) for i, entry in enumerate(entries)])
            if created:
                bulk_insert(conn, ledger_nodes, [(region, level, idx, digest) for level, idx, digest in created])
        except IntegrityError as exc:
            raise WriteConflictError(
                f"ledger {region!r}: leaves from {size} were appended concurrently; roll back and retry"
            ) from exc
        new_size = size + len(entries)
        known = dict(stored_frontier)
        known[(0, new_size - 1)] = hashes[-1]
        known.update(((level, idx), digest) for level, idx, digest in created)
        return AppendResult(size, new_size, self._fold(subtrees_of_range(0, new_size), known))

    def append(self, conn: Connection, entries: list[bytes]) -> int:
        """Append entries and return the index of the first (the record store's ``EventJournal``)."""
        return self.append_batch(conn, entries).first_index

    def record_checkpoint(self, conn: Connection, tree_size: int, root_hash: bytes, note: str) -> None:
        """Keep a signed checkpoint note issued for this log at ``tree_size``.

        Raises:
            InputError: ``root_hash`` is not this log's root at ``tree_size`` (or the size is beyond the log).
        """
        if self.root(conn, tree_size) != root_hash:
            raise InputError(f"checkpoint root for size {tree_size} does not match ledger {self.region!r}")
        conn.execute(
            ledger_checkpoints.insert(),
            {"region": self.region, "tree_size": tree_size, "root_hash": root_hash, "note": note},
        )

    # --- reading -----------------------------------------------------------------------------------

    def tree_size(self, conn: Connection) -> int:
        """Number of leaves in the log."""
        last = conn.execute(_LAST_LEAF_INDEX, {"region": self.region}).scalar()
        return 0 if last is None else int(last) + 1

    def root(self, conn: Connection, size: int | None = None) -> bytes:
        """Root hash of the log at ``size`` leaves (default: now).

        Raises:
            InputError: ``size`` is negative or beyond the log.
            LedgerIntegrityError: a needed subtree row is missing.
        """
        size = self._checked_size(conn, size)
        return root_from_source(size, _ConnectionSubtreeSource(self, conn))

    def inclusion_proof(self, conn: Connection, index: int, size: int) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1), bottom-up.

        Raises:
            InputError: ``size`` is beyond the log, or ``index`` is not below ``size``.
            LedgerIntegrityError: a needed subtree row is missing.
        """
        size = self._checked_size(conn, size)
        if not 0 <= index < size:
            raise InputError(f"leaf index {index} is not in a tree of size {size}")
        return generate_inclusion_proof(index, size, _ConnectionSubtreeSource(self, conn))

    def consistency_proof(self, conn: Connection, size1: int, size2: int) -> list[bytes]:
        """Consistency proof between tree sizes ``size1`` and ``size2`` (RFC 9162 §2.1.4.1).

        Raises:
            InputError: not ``0 < size1 <= size2 <= tree_size``.
            LedgerIntegrityError: a needed subtree row is missing.
        """
        size2 = self._checked_size(conn, size2)
        if not 0 < size1 <= size2:
            raise InputError(f"no consistency proof from size {size1} to {size2}; need 0 < size1 <= size2")
        return generate_consistency_proof(size1, size2, _ConnectionSubtreeSource(self, conn))

    def entries(self, conn: Connection, start: int, end: int) -> list[bytes]:
        """The entries of leaves ``[start, end)``, in order.

        Raises:
            InputError: not ``0 <= start <= end <= tree_size``.
            LedgerIntegrityError: an entry row in the range is missing.
        """
        self._checked_size(conn, end)
        if not 0 <= start <= end:
            raise InputError(f"entry range [{start}, {end}) is not valid")
        rows = conn.execute(
            select(ledger_entries.c.idx, ledger_entries.c.entry)
            .where(ledger_entries.c.region == self.region, ledger_entries.c.idx >= start, ledger_entries.c.idx < end)
            .order_by(ledger_entries.c.idx)
        ).all()
        if len(rows) != end - start or (rows and (rows[0][0] != start or rows[-1][0] != end - 1)):
            raise LedgerIntegrityError(f"ledger {self.region!r}: entries missing in [{start}, {end})")
        # a tampered row may hold TEXT instead of a BLOB: read it as bytes so verification can reject it
        return [entry.encode() if isinstance(entry, str) else bytes(entry) for _, entry in rows]

    def latest_checkpoint(self, conn: Connection) -> StoredCheckpoint | None:
        """The most recently recorded checkpoint of the largest tree size, or None."""
        row = conn.execute(
            select(ledger_checkpoints.c.tree_size, ledger_checkpoints.c.root_hash, ledger_checkpoints.c.note)
            .where(ledger_checkpoints.c.region == self.region)
            .order_by(ledger_checkpoints.c.tree_size.desc(), ledger_checkpoints.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2])

    def audit(self, conn: Connection, size: int | None = None) -> bytes:
        """Recompute the tree of ``size`` leaves (default: now) from the entries and return its root.

        Reads everything once, in chunks: every stored leaf hash and every stored complete subtree in
        range must equal the recomputed one. Compare the result with a signed checkpoint's root.

        Raises:
            LedgerIntegrityError: a stored row is missing, extra or differs from the recomputed tree.
        """
        size = self._checked_size(conn, size)
        frontier: dict[int, bytes] = {}
        for start in range(0, size, _AUDIT_CHUNK):
            end = min(start + _AUDIT_CHUNK, size)
            hashes = leaf_hashes(self.entries(conn, start, end))
            stored_leaves = self._stored_spans(conn, [(0, start, end - 1)])
            if stored_leaves != {(0, start + i): digest for i, digest in enumerate(hashes)}:
                raise LedgerIntegrityError(f"ledger {self.region!r}: leaf hashes in [{start}, {end}) were altered")
            created = new_complete_subtrees(start, frontier, hashes)
            computed = {(level, idx): digest for level, idx, digest in created}
            spans = [(lv, start >> lv, (end >> lv) - 1) for lv in range(1, end.bit_length()) if end >> lv > start >> lv]
            if self._stored_spans(conn, spans) != computed:
                raise LedgerIntegrityError(f"ledger {self.region!r}: subtree hashes over [{start}, {end}) were altered")
            computed.update(((0, start + i), digest) for i, digest in enumerate(hashes))
            frontier = {
                level: computed[(level, idx)] if (level, idx) in computed else frontier[level]
                for level, idx in subtrees_of_range(0, end)
            }
        return self._fold(subtrees_of_range(0, size), {(lv, (size >> lv) - 1): h for lv, h in frontier.items()})

    # --- internals ---------------------------------------------------------------------------------

    def _checked_size(self, conn: Connection, size: int | None) -> int:
        current = self.tree_size(conn)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is not available; ledger {self.region!r} has {current} leaves")
        return size

    @staticmethod
    def _fold(coords: Sequence[SubtreeCoord], known: Mapping[SubtreeCoord, bytes]) -> bytes:
        return fold_subtree_hashes([known[coord] for coord in coords])

    def _fetch_subtrees(self, conn: Connection, coords: Sequence[SubtreeCoord]) -> dict[SubtreeCoord, bytes]:
        """Read complete-subtree hashes (level 0 from the leaves table) in one query; all must exist."""
        wanted = list(dict.fromkeys(coords))
        if not wanted:
            return {}
        leaf_indexes = [idx for level, idx in wanted if level == 0]
        node_coords = [(level, idx) for level, idx in wanted if level > 0]
        # Repeating the last term up to a multiple of 8 keeps the number of distinct statements small, so
        # their compiled forms stay cached (in SQLAlchemy and in the driver) instead of one per proof shape.
        leaf_terms, node_terms = -len(leaf_indexes) // 8 * -8, -len(node_coords) // 8 * -8
        leaf_indexes += leaf_indexes[-1:] * (leaf_terms - len(leaf_indexes))
        node_coords += node_coords[-1:] * (node_terms - len(node_coords))
        params: dict[str, object] = {"region": self.region}
        params.update((f"leaf{k}", idx) for k, idx in enumerate(leaf_indexes))
        for k, (level, idx) in enumerate(node_coords):
            params[f"level{k}"], params[f"node{k}"] = level, idx
        query = _subtree_lookup(leaf_terms, node_terms)
        found = {(int(level), int(idx)): bytes(digest) for level, idx, digest in conn.execute(query, params)}
        if len(found) != len(wanted):
            missing = sorted(set(wanted) - found.keys())
            raise LedgerIntegrityError(f"ledger {self.region!r}: subtree rows {missing[:5]} are missing")
        return found

    def _stored_spans(self, conn: Connection, spans: Sequence[tuple[int, int, int]]) -> dict[SubtreeCoord, bytes]:
        """Hashes of the subtrees ``(level, first..last)`` of each span, in one UNION ALL query (for audits)."""
        leaves, nodes, region = ledger_leaves.c, ledger_nodes.c, self.region
        leaf_terms = [
            and_(leaves.region == region, leaves.idx.between(first, last)) for lv, first, last in spans if lv == 0
        ]
        node_terms = [
            and_(nodes.region == region, nodes.level == level, nodes.idx.between(first, last))
            for level, first, last in spans
            if level > 0
        ]
        parts = []
        if leaf_terms:
            level_zero = literal_column("0", SmallInteger).label("level")
            parts.append(select(level_zero, leaves.idx, leaves.leaf_hash).where(or_(*leaf_terms)))
        if node_terms:
            parts.append(select(nodes.level, nodes.idx, nodes.hash).where(or_(*node_terms)))
        if not parts:
            return {}
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        return {(int(level), int(idx)): bytes(digest) for level, idx, digest in conn.execute(query)}


_LAST_LEAF_INDEX = select(func.max(ledger_leaves.c.idx)).where(ledger_leaves.c.region == bindparam("region"))


@functools.lru_cache(maxsize=1024)
def _subtree_lookup(leaf_count: int, node_count: int) -> TextClause:
    """The one query that reads given leaf hashes and subtree hashes, one statement per shape.

    Plain SQL that both SQLite and PostgreSQL run, built once per (leaf_count, node_count): building the
    equivalent Core expression on every proof cost ~1.5 ms, this costs ~0.1 ms. Each OR term repeats the
    region so that every term is a primary-key lookup of its own (with the region outside the OR, SQLite
    without statistics scans the whole region instead).
    """
    parts = []
    if leaf_count:
        terms = " OR ".join(f"(region = :region AND idx = :leaf{k})" for k in range(leaf_count))
        parts.append(f"SELECT 0 AS level, idx, leaf_hash AS hash FROM {ledger_leaves.name} WHERE {terms}")
    if node_count:
        terms = " OR ".join(f"(region = :region AND level = :level{k} AND idx = :node{k})" for k in range(node_count))
        parts.append(f"SELECT level, idx, hash FROM {ledger_nodes.name} WHERE {terms}")
    return text(" UNION ALL ".join(parts))
