"""Tampering with the stored log, directly in SQL, is caught by a verifier that trusts only the log's key.

The regulator's check (``verify_as_regulator``) uses what the operator serves (entries, proofs, roots)
and a checkpoint signed by the log key; ``MerkleLog.audit`` is the operator's own full recomputation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, Table, create_engine, delete, insert, select, update

from onshore.errors import InputError
from onshore.ledger import (
    CheckpointError,
    LedgerIntegrityError,
    MerkleLog,
    ProofError,
    generate_signer,
    leaf_hash,
    ledger_checkpoints,
    ledger_entries,
    ledger_leaves,
    ledger_nodes,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from onshore.storage.schema import metadata

from .test_store import BACKENDS, backend_engine, delete_region_rows

ORIGIN = "onshore.example/tamper"
LOG_SIGNER = generate_signer(ORIGIN)
TRUSTED_LOG_KEYS = [LOG_SIGNER.verifier]
DETECTED = (ProofError, LedgerIntegrityError, CheckpointError)

Pick = Callable[[int, int], int]  # an integer in [low, high]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    made = backend_engine(request.param, tmp_path_factory)
    yield made
    made.dispose()


def event_entries(count: int) -> list[bytes]:
    return [b"event-%04d" % i for i in range(count)]


def build_log(conn: Connection, region: str, count: int, checkpoint_size: int) -> tuple[MerkleLog, str]:
    """A log of ``count`` events with a signed checkpoint at ``checkpoint_size``."""
    log = MerkleLog(region)
    entries = event_entries(count)
    root = log.append_batch(conn, entries[:checkpoint_size]).root
    note = sign_checkpoint(ORIGIN, checkpoint_size, root, LOG_SIGNER)
    log.record_checkpoint(conn, checkpoint_size, root, note)
    log.append_batch(conn, entries[checkpoint_size:])
    return log, note


def verify_as_regulator(conn: Connection, log: MerkleLog, note: str) -> None:
    """Check every checkpointed event by inclusion proof, and the current tree by consistency proof."""
    checkpoint = verify_checkpoint(note, TRUSTED_LOG_KEYS, origin=ORIGIN).checkpoint
    size, signed_size, signed_root = log.tree_size(conn), checkpoint.tree_size, checkpoint.root_hash
    if size < signed_size:
        raise LedgerIntegrityError(f"log has {size} leaves, fewer than its signed checkpoint ({signed_size})")
    if log.root(conn, signed_size) != signed_root:
        raise ProofError(f"tree head at size {signed_size} differs from the signed checkpoint")
    for index, entry in enumerate(log.entries(conn, 0, signed_size)):
        verify_inclusion(
            leaf_hash(entry), index, signed_size, log.inclusion_proof(conn, index, signed_size), signed_root
        )
    proof = log.consistency_proof(conn, signed_size, size)
    verify_consistency(signed_size, size, proof, signed_root, log.root(conn))


def audit_matches(conn: Connection, log: MerkleLog, note: str) -> bool:
    checkpoint = verify_checkpoint(note, TRUSTED_LOG_KEYS, origin=ORIGIN).checkpoint
    try:
        return log.audit(conn, checkpoint.tree_size) == checkpoint.root_hash
    except (LedgerIntegrityError, InputError):  # rows contradict each other, or the log is shorter
        return False


# --- tamperings (plain SQL on the ledger tables) ----------------------------------------------------------


def _flip(value: bytes, bit: int) -> bytes:
    position = bit % (len(value) * 8)
    flipped = bytearray(value)
    flipped[position // 8] ^= 1 << (position % 8)
    return bytes(flipped)


def _stored_nodes(conn: Connection, region: str, within: int) -> list[tuple[int, int]]:
    rows = conn.execute(select(ledger_nodes.c.level, ledger_nodes.c.idx).where(ledger_nodes.c.region == region))
    return sorted((level, idx) for level, idx in rows if (idx + 1) << level <= within)


def _payload(table: Table) -> str:
    return {"ledger_entries": "entry", "ledger_leaves": "leaf_hash", "ledger_nodes": "hash"}[table.name]


def _modify(conn: Connection, region: str, size: int, pick: Pick) -> None:
    table = (ledger_entries, ledger_leaves, ledger_nodes)[pick(0, 2)]
    where = [table.c.region == region]
    if table is ledger_nodes:
        nodes = _stored_nodes(conn, region, size)
        if not nodes:
            table, where = ledger_leaves, [*where, ledger_leaves.c.idx == pick(0, size - 1)]
        else:
            level, idx = nodes[pick(0, len(nodes) - 1)]
            where += [ledger_nodes.c.level == level, ledger_nodes.c.idx == idx]
    else:
        where.append(table.c.idx == pick(0, size - 1))
    column = table.c[_payload(table)]
    value = conn.execute(select(column).where(*where)).scalar_one()
    conn.execute(update(table).where(*where).values({column.name: _flip(value, pick(0, 255))}))


def _delete(conn: Connection, region: str, size: int, pick: Pick) -> None:
    table = (ledger_entries, ledger_leaves, ledger_nodes)[pick(0, 2)]
    nodes = _stored_nodes(conn, region, size)
    if table is ledger_nodes and nodes:
        level, idx = nodes[pick(0, len(nodes) - 1)]
        conn.execute(
            delete(ledger_nodes).where(
                ledger_nodes.c.region == region, ledger_nodes.c.level == level, ledger_nodes.c.idx == idx
            )
        )
        return
    table = ledger_leaves if table is ledger_nodes else table
    conn.execute(delete(table).where(table.c.region == region, table.c.idx == pick(0, size - 1)))


def _reorder(conn: Connection, region: str, size: int, pick: Pick) -> None:
    table = (ledger_entries, ledger_leaves)[pick(0, 1)]
    first = pick(0, size - 2)
    second = pick(first + 1, size - 1)
    column = table.c[_payload(table)]
    values = {
        idx: value
        for idx, value in conn.execute(
            select(table.c.idx, column).where(table.c.region == region, table.c.idx.in_([first, second]))
        )
    }
    for idx, other in ((first, second), (second, first)):
        conn.execute(
            update(table).where(table.c.region == region, table.c.idx == idx).values({column.name: values[other]})
        )


def _insert(conn: Connection, region: str, size: int, pick: Pick) -> None:
    """Slip a forged event in at some position, shifting the later ones up (leaves and entries)."""
    position = pick(0, size - 1)
    forged = b"forged-event"
    for table, value in ((ledger_entries, forged), (ledger_leaves, leaf_hash(forged))):
        column = table.c[_payload(table)]
        later = conn.execute(select(table.c.idx, column).where(table.c.region == region, table.c.idx >= position)).all()
        conn.execute(delete(table).where(table.c.region == region, table.c.idx >= position))
        rows = [{"region": region, "idx": idx + 1, column.name: payload} for idx, payload in later]
        conn.execute(insert(table), [{"region": region, "idx": position, column.name: value}, *rows])


def _truncate(conn: Connection, region: str, size: int, pick: Pick) -> None:
    keep = pick(0, size - 1)
    for table in (ledger_entries, ledger_leaves):
        conn.execute(delete(table).where(table.c.region == region, table.c.idx >= keep))
    for level, idx in conn.execute(
        select(ledger_nodes.c.level, ledger_nodes.c.idx).where(ledger_nodes.c.region == region)
    ).all():
        if (idx + 1) << level > keep:
            conn.execute(
                delete(ledger_nodes).where(
                    ledger_nodes.c.region == region, ledger_nodes.c.level == level, ledger_nodes.c.idx == idx
                )
            )


def _rewrite_history(conn: Connection, region: str, size: int, pick: Pick) -> None:
    """Replace one event and recompute every hash consistently, as an operator with full access could."""
    log = MerkleLog(region)
    entries = log.entries(conn, 0, log.tree_size(conn))
    entries[pick(0, size - 1)] = b"rewritten-event"
    delete_region_rows(conn, region)
    log.append_batch(conn, entries)


TAMPERINGS: dict[str, Callable[[Connection, str, int, Pick], None]] = {
    "modify": _modify,
    "delete": _delete,
    "reorder": _reorder,
    "insert": _insert,
    "truncate": _truncate,
    "rewrite-history": _rewrite_history,
}


# --- the tests --------------------------------------------------------------------------------------------


@pytest.fixture
def region(engine: Engine) -> Iterator[str]:
    name = f"tamper-{uuid.uuid4().hex[:12]}"
    yield name
    with engine.begin() as conn:
        delete_region_rows(conn, name)


def test_untampered_log_passes_every_check(engine: Engine, region: str) -> None:
    with engine.begin() as conn:
        log, note = build_log(conn, region, count=37, checkpoint_size=29)
        verify_as_regulator(conn, log, note)
        assert audit_matches(conn, log, note)


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_tampering_is_caught(engine: Engine, region: str, tampering: str, seed: int) -> None:
    rng = random.Random(f"{tampering}-{seed}")
    with engine.begin() as conn:
        log, note = build_log(conn, region, count=37, checkpoint_size=29)
        TAMPERINGS[tampering](conn, region, 29, rng.randint)
        with pytest.raises(DETECTED):
            verify_as_regulator(conn, log, note)
        assert not audit_matches(conn, log, note)


def test_history_rewritten_and_resigned_with_another_key_is_rejected(engine: Engine, region: str) -> None:
    attacker = generate_signer(ORIGIN)
    with engine.begin() as conn:
        log, _ = build_log(conn, region, count=20, checkpoint_size=20)
        _rewrite_history(conn, region, 20, lambda low, high: 7)
        forged_note = sign_checkpoint(ORIGIN, 20, log.root(conn), attacker)
        with pytest.raises(CheckpointError):
            verify_as_regulator(conn, log, forged_note)


@pytest.fixture(scope="module")
def memory_engine() -> Iterator[Engine]:
    made = create_engine("sqlite://")
    # the ledger's tables alone (a whole record store comes from the migrations)
    metadata.create_all(made, tables=[ledger_entries, ledger_leaves, ledger_nodes, ledger_checkpoints])
    yield made
    made.dispose()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tampering=st.sampled_from(sorted(TAMPERINGS)),
    checkpoint_size=st.integers(min_value=2, max_value=40),
    extra=st.integers(min_value=0, max_value=9),
    data=st.data(),
)
def test_random_tampering_is_always_caught(
    memory_engine: Engine, tampering: str, checkpoint_size: int, extra: int, data: st.DataObject
) -> None:
    region = f"tamper-{uuid.uuid4().hex[:12]}"

    def pick(low: int, high: int) -> int:
        return data.draw(st.integers(min_value=low, max_value=high))

    with memory_engine.connect() as conn, conn.begin() as transaction:
        log, note = build_log(conn, region, checkpoint_size + extra, checkpoint_size)
        verify_as_regulator(conn, log, note)
        TAMPERINGS[tampering](conn, region, checkpoint_size, pick)
        with pytest.raises(DETECTED):
            verify_as_regulator(conn, log, note)
        assert not audit_matches(conn, log, note)
        transaction.rollback()
