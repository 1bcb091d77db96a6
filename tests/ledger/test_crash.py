"""Crash safety: a process appending to the log is SIGKILLed at random moments; the log it leaves verifies
(full audit, signed checkpoint, auditor's verification across the crash) and holds whole batches only."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from onshore.ledger import MerkleLog, NoteVerifier, leaf_hashes, root_from_leaf_hashes
from onshore.ledger.sources import BundleLedgerSource
from onshore.ledger.store import ledger_checkpoints, ledger_entries, ledger_leaves, ledger_nodes
from onshore.ledger.verify import verify_ledger
from onshore.storage.schema import metadata
from onshore.storage.sql import make_engine
from tests.conftest import CN_VIN, Workspace

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

ROOT = Path(__file__).resolve().parents[2]

INGEST_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from onshore.config import load_settings
    from onshore.runtime import Runtime

    runtime = Runtime(load_settings(Path(sys.argv[1]), env={}))
    vehicle = runtime.vehicles.authenticate(os.environ["CRASH_VEHICLE_TOKEN"])
    run = sys.argv[2]
    batch = 0
    while True:
        ts = int(time.time() * 1000) - 1000
        records = [
            {"msg_id": f"{run}-{batch}-{i}", "ts": ts, "signal": "VehicleSpeed", "value": i} for i in range(300)
        ]
        runtime.ingest.ingest_records(vehicle, records)
        if batch == 0:
            print("ready", flush=True)  # from here on the kill lands while batches are being appended
        batch += 1
    """
)

MERKLE_CHILD = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from sqlalchemy import Column, Integer, MetaData, String, Table
    from onshore.ledger import MerkleLog
    from onshore.storage.sql import make_engine

    db, run = sys.argv[1], sys.argv[2]
    engine = make_engine(f"sqlite:///{db}", base_dir=Path(db).parent, synchronous="FULL")
    batches = Table("batches", MetaData(), Column("id", String, primary_key=True), Column("n", Integer))
    log, rng = MerkleLog("crash"), random.Random(run)
    batch = 0
    while True:
        n = rng.randint(1, 1500)
        batch_id = f"{run}-{batch}"
        with engine.begin() as conn:
            conn.execute(batches.insert(), {"id": batch_id, "n": n})
            log.append_batch(conn, [f"{batch_id}:{i}:{n}".encode() for i in range(n)])
        if batch == 0:
            print("ready", flush=True)
        batch += 1
    """
)


def _kill_mid_run(args: list[str], env: dict[str, str], rng: random.Random) -> None:
    """Start a child, wait until its first batch is committed, SIGKILL it at a random moment after."""
    child = subprocess.Popen(
        [sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == b"ready", (line, child.stderr.read() if child.stderr else b"")
        time.sleep(rng.uniform(0.05, 0.35))
        assert child.poll() is None, child.stderr.read() if child.stderr else b""
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSHORE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return {**env, **extra}


def test_a_killed_ingest_leaves_whole_batches_and_a_log_that_verifies(workspace: Workspace) -> None:
    ledger, store = workspace.runtime.ledger, workspace.runtime.regions["cn"].store
    token = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    env = _child_env(CRASH_VEHICLE_TOKEN=token)
    rng = random.Random(20240601)
    log_keys = [NoteVerifier.from_vkey(k.vkey) for k in ledger.public_keys("cn")]
    trusted = ledger.checkpoint("cn").note
    for run in range(4):
        _kill_mid_run([INGEST_CHILD, str(workspace.config), f"r{run}"], env, rng)
        with store.read("check") as conn:
            log = MerkleLog("cn")
            size = log.tree_size(conn)
            assert log.audit(conn) == log.root(conn)  # every stored leaf and node matches the entries
            events = [orjson.loads(e) for e in log.entries(conn, 0, size)]
        assert size % 2 == 0 and size >= 2 * (run + 1)  # each ingest batch is a collect and a store event
        assert [e["kind"] for e in events] == ["collect", "store"] * (size // 2)
        assert sum(e["counts"]["stored"] for e in events[1::2]) == store.count_records()
        assert all(e["counts"]["admitted"] == 300 for e in events[0::2])
        bundle = ledger.export_bundle("cn", workspace.folder / f"after-kill-{run}.json")
        verdict = verify_ledger(BundleLedgerSource(bundle.path), log_keys, trusted_checkpoint=trusted)
        assert verdict.ok, verdict.failures
        assert Counter(verdict.events_by_kind) == {"collect": size // 2, "store": size // 2}
        trusted = verdict.checkpoint_note or ""


def test_a_killed_batch_append_is_all_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite"
    engine = make_engine(f"sqlite:///{db}", base_dir=tmp_path, synchronous="FULL")
    # the ledger's tables alone (a whole record store comes from the migrations)
    metadata.create_all(engine, tables=[ledger_entries, ledger_leaves, ledger_nodes, ledger_checkpoints])
    batches = Table("batches", MetaData(), Column("id", String, primary_key=True), Column("n", Integer))
    batches.metadata.create_all(engine)
    rng = random.Random(6962)
    try:
        for run in range(4):
            _kill_mid_run([MERKLE_CHILD, str(db), f"k{run}"], _child_env(), rng)
            log = MerkleLog("crash")
            with engine.connect() as conn:
                size = log.tree_size(conn)
                entries = log.entries(conn, 0, size)
                assert log.audit(conn) == log.root(conn) == root_from_leaf_hashes(leaf_hashes(entries))
                committed = dict(conn.execute(select(batches.c.id, batches.c.n)).all())
            seen: dict[str, list[int]] = {}
            for entry in entries:
                batch_id, index, count = entry.decode().split(":")
                seen.setdefault(batch_id, []).append(int(index))
                assert committed[batch_id] == int(count)
            assert {b: list(range(n)) for b, n in committed.items()} == seen  # whole batches, in order
            assert any(b.startswith(f"k{run}-") for b in seen)
    finally:
        engine.dispose()
