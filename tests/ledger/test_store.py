"""MerkleLog on SQLite and PostgreSQL: the stored tree equals the RFC 9162 reference, proofs verify."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select
from sqlalchemy.exc import OperationalError

from onshore.errors import InputError, WriteConflictError
from onshore.ledger import (
    EMPTY_ROOT,
    LedgerIntegrityError,
    MerkleLog,
    ledger_checkpoints,
    ledger_entries,
    ledger_leaves,
    ledger_nodes,
    verify_consistency,
    verify_inclusion,
)
from onshore.ledger.merkle import leaf_hash
from onshore.storage.schema import metadata

from .test_merkle_vectors import load_roots, ref_consistency_proof, ref_inclusion_proof, ref_leaves, ref_root

POSTGRES_URL = os.environ.get("ONSHORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_engine() -> Engine:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable (CI=true): {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")
    return engine


def backend_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """A SQLite file or the test PostgreSQL database, with the ledger tables created."""
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
        made = create_engine(f"sqlite:///{path}")
    else:
        made = _postgres_engine()
    # the ledger's tables alone (a whole record store comes from the migrations)
    metadata.create_all(made, tables=[ledger_entries, ledger_leaves, ledger_nodes, ledger_checkpoints])
    return made


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    made = backend_engine(request.param, tmp_path_factory)
    yield made
    made.dispose()


def delete_region_rows(conn: Connection, region: str) -> None:
    for table in (ledger_entries, ledger_leaves, ledger_nodes, ledger_checkpoints):
        conn.execute(delete(table).where(table.c.region == region))


@pytest.fixture
def log(engine: Engine) -> Iterator[MerkleLog]:
    """A log under a fresh region name; its rows are deleted afterwards."""
    merkle_log = MerkleLog(f"test-{uuid.uuid4().hex[:12]}")
    yield merkle_log
    with engine.begin() as conn:
        delete_region_rows(conn, merkle_log.region)


class SelectCounter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.selects = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1

    def __enter__(self) -> SelectCounter:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


def test_empty_log_has_size_zero_and_the_empty_root(engine: Engine, log: MerkleLog) -> None:
    with engine.connect() as conn:
        assert log.tree_size(conn) == 0
        assert log.root(conn) == EMPTY_ROOT
        assert log.entries(conn, 0, 0) == []
        assert log.audit(conn) == EMPTY_ROOT
        assert log.latest_checkpoint(conn) is None


def test_roots_json_reproduced_by_the_sql_log(engine: Engine, log: MerkleLog) -> None:
    leaves, roots = load_roots()
    with engine.begin() as conn:
        for data in leaves:
            log.append_batch(conn, [data])
        for size, expected in enumerate(roots):
            assert log.root(conn, size) == expected


def test_proofs_for_every_pair_up_to_40_match_the_reference_and_verify(engine: Engine, log: MerkleLog) -> None:
    leaves = ref_leaves(40)
    with engine.begin() as conn:
        appended = 0
        for batch in (1, 2, 3, 5, 8, 13, 8):  # odd batch shapes cross every frontier case
            result = log.append_batch(conn, leaves[appended : appended + batch])
            assert (result.first_index, result.tree_size) == (appended, appended + batch)
            appended += batch
            assert result.root == ref_root(leaves[:appended])
        for size in range(1, 41):
            root = ref_root(leaves[:size])
            assert log.root(conn, size) == root
            for index in range(size):
                proof = log.inclusion_proof(conn, index, size)
                assert proof == ref_inclusion_proof(index, leaves[:size])
                verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
            for size1 in range(1, size + 1):
                proof = log.consistency_proof(conn, size1, size)
                assert proof == ref_consistency_proof(size1, leaves[:size])
                verify_consistency(size1, size, proof, ref_root(leaves[:size1]), root)


def test_any_batching_stores_the_same_tree(engine: Engine) -> None:
    leaves = ref_leaves(70)
    tables: list[tuple[set[Any], set[Any]]] = []
    for shape in ([70], [1] * 70, [33, 1, 31, 5], [64, 6]):
        merkle_log = MerkleLog(f"test-{uuid.uuid4().hex[:12]}")
        with engine.begin() as conn:
            start = 0
            for batch in shape:
                merkle_log.append_batch(conn, leaves[start : start + batch])
                start += batch
            nodes = conn.execute(
                select(ledger_nodes.c.level, ledger_nodes.c.idx, ledger_nodes.c.hash).where(
                    ledger_nodes.c.region == merkle_log.region
                )
            ).all()
            hashes = conn.execute(
                select(ledger_leaves.c.idx, ledger_leaves.c.leaf_hash).where(
                    ledger_leaves.c.region == merkle_log.region
                )
            ).all()
            tables.append(({tuple(r) for r in nodes}, {tuple(r) for r in hashes}))
            assert merkle_log.root(conn) == ref_root(leaves)
            delete_region_rows(conn, merkle_log.region)
    assert all(t == tables[0] for t in tables)
    assert len(tables[0][0]) == 70 - bin(70).count("1")  # a complete subtree per merge: n - popcount(n)


def test_appends_and_proofs_read_only_what_they_need(engine: Engine, log: MerkleLog) -> None:
    with engine.begin() as conn:
        log.append_batch(conn, ref_leaves(1000))
        with SelectCounter(engine) as counter:
            log.append_batch(conn, [b"one more"])
        assert counter.selects == 2  # tree size, then the frontier
        with SelectCounter(engine) as counter:
            log.inclusion_proof(conn, 517, 1001)
        assert counter.selects == 2  # tree size, then every needed subtree in one query
        with SelectCounter(engine) as counter:
            log.consistency_proof(conn, 333, 1001)
        assert counter.selects == 2


def test_entries_come_back_in_order(engine: Engine, log: MerkleLog) -> None:
    leaves = ref_leaves(25)
    with engine.begin() as conn:
        log.append_batch(conn, leaves[:10])
        log.append_batch(conn, leaves[10:])
        assert log.entries(conn, 0, 25) == leaves
        assert log.entries(conn, 7, 12) == leaves[7:12]
        assert log.audit(conn) == ref_root(leaves)
        assert log.audit(conn, 13) == ref_root(leaves[:13])


def test_empty_batch_changes_nothing(engine: Engine, log: MerkleLog) -> None:
    with engine.begin() as conn:
        log.append_batch(conn, [b"a", b"b", b"c"])
        result = log.append_batch(conn, [])
        assert (result.first_index, result.tree_size, result.root) == (3, 3, ref_root([b"a", b"b", b"c"]))
        assert log.append(conn, [b"d"]) == 3  # the record store's EventJournal protocol


def test_rolled_back_append_leaves_no_trace(engine: Engine, log: MerkleLog) -> None:
    with engine.connect() as conn:
        with conn.begin():
            log.append_batch(conn, [b"kept"])
        transaction = conn.begin()
        log.append_batch(conn, [b"dropped"] * 5)
        transaction.rollback()
        assert log.tree_size(conn) == 1
        assert log.root(conn) == ref_root([b"kept"])


def test_regions_do_not_see_each_other(engine: Engine, log: MerkleLog) -> None:
    other = MerkleLog(f"test-{uuid.uuid4().hex[:12]}")
    try:
        with engine.begin() as conn:
            log.append_batch(conn, [b"a", b"b"])
            other.append_batch(conn, [b"x"])
            assert log.tree_size(conn) == 2 and other.tree_size(conn) == 1
            assert other.root(conn) == ref_root([b"x"])
    finally:
        with engine.begin() as conn:
            delete_region_rows(conn, other.region)


@pytest.mark.parametrize(
    "request_",
    [
        lambda log, conn: log.root(conn, 4),
        lambda log, conn: log.root(conn, -1),
        lambda log, conn: log.inclusion_proof(conn, 3, 3),
        lambda log, conn: log.inclusion_proof(conn, 0, 4),
        lambda log, conn: log.inclusion_proof(conn, -1, 3),
        lambda log, conn: log.consistency_proof(conn, 0, 3),
        lambda log, conn: log.consistency_proof(conn, 3, 2),
        lambda log, conn: log.consistency_proof(conn, 2, 4),
        lambda log, conn: log.entries(conn, 2, 4),
        lambda log, conn: log.entries(conn, 2, 1),
        lambda log, conn: MerkleLog(""),
    ],
    ids=[
        "root-beyond",
        "root-negative",
        "index-equals-size",
        "size-beyond",
        "index-negative",
        "consistency-from-empty",
        "consistency-backwards",
        "consistency-beyond",
        "entries-beyond",
        "entries-reversed",
        "empty-region",
    ],
)
def test_out_of_range_requests_raise_input_error(engine: Engine, log: MerkleLog, request_: Any) -> None:
    with engine.begin() as conn:
        log.append_batch(conn, [b"a", b"b", b"c"])
        with pytest.raises(InputError):
            request_(log, conn)


def test_equal_sizes_have_an_empty_consistency_proof(engine: Engine, log: MerkleLog) -> None:
    with engine.begin() as conn:
        log.append_batch(conn, [b"a", b"b", b"c"])
        assert log.consistency_proof(conn, 3, 3) == []


def test_checkpoints_are_recorded_against_the_matching_root(engine: Engine, log: MerkleLog) -> None:
    with engine.begin() as conn:
        first = log.append_batch(conn, [b"a", b"b"])
        log.record_checkpoint(conn, 2, first.root, "note at 2\n")
        second = log.append_batch(conn, [b"c"])
        log.record_checkpoint(conn, 3, second.root, "note at 3\n")
        latest = log.latest_checkpoint(conn)
        assert latest is not None and (latest.tree_size, latest.root_hash, latest.note) == (
            3,
            second.root,
            "note at 3\n",
        )
        with pytest.raises(InputError):
            log.record_checkpoint(conn, 3, first.root, "wrong root\n")


def test_missing_frontier_row_is_an_integrity_error(engine: Engine, log: MerkleLog) -> None:
    with engine.begin() as conn:
        log.append_batch(conn, ref_leaves(6))
        conn.execute(delete(ledger_nodes).where(ledger_nodes.c.region == log.region, ledger_nodes.c.level == 2))
        with pytest.raises(LedgerIntegrityError):
            log.append_batch(conn, [b"next"])
        with pytest.raises(LedgerIntegrityError):
            log.root(conn)
        assert conn.execute(select(func.count()).select_from(ledger_nodes)).scalar() is not None


def test_concurrent_append_surfaces_as_conflict(engine: Engine, log: MerkleLog) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        log.append_batch(conn, [b"a"])
        # What a concurrent writer leaves behind: a row at the index this append is about to take.
        conn.execute(ledger_entries.insert().values(region=log.region, idx=1, entry=b"other writer"))
        with pytest.raises(WriteConflictError, match="roll back and retry"):
            log.append_batch(conn, [b"b"])
        transaction.rollback()
