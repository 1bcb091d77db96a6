"""Benchmark of the SQL Merkle log: batched appends into a SQLite file, then proofs at full size.

Usage:
    python bench/ledger.py --json               # 1,000,000 leaves in batches of 1000
    python bench/ledger.py --leaves 200000      # smaller run

Appends commit once per batch (WAL, synchronous=FULL by default, as the embedded record store runs). The baseline is
plain ``hashlib.sha256`` over the same entry bytes in the same process, to show what share of the append
cost is hashing. Proof timings include the tree-size query and are medians over random requests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from onshore.ledger import MerkleLog, leaf_hash, verify_consistency, verify_inclusion
from onshore.ledger.store import ledger_checkpoints, ledger_entries, ledger_leaves, ledger_nodes
from onshore.storage.schema import metadata


def _sqlite_engine(path: Path, synchronous: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    return engine


def _batch_entries(first: int, count: int, filler: bytes) -> list[bytes]:
    """Distinct event-sized entries (a sequence number and a digest-like filler)."""
    return [i.to_bytes(8, "big") + filler for i in range(first, first + count)]


def run(leaves: int, batch: int, proofs: int, entry_bytes: int, seed: int, synchronous: str) -> dict[str, Any]:
    rng = random.Random(seed)
    filler = rng.randbytes(max(entry_bytes - 8, 0))
    log = MerkleLog("bench")
    with tempfile.TemporaryDirectory(prefix="onshore-ledger-bench-") as folder:
        db_path = Path(folder) / "ledger.sqlite"
        engine = _sqlite_engine(db_path, synchronous)
        # the ledger's tables alone (a whole record store comes from the migrations)
        metadata.create_all(engine, tables=[ledger_entries, ledger_leaves, ledger_nodes, ledger_checkpoints])
        append_seconds = 0.0
        for first in range(0, leaves, batch):
            entries = _batch_entries(first, min(batch, leaves - first), filler)
            started = time.perf_counter()
            with engine.begin() as conn:
                log.append_batch(conn, entries)
            append_seconds += time.perf_counter() - started

        baseline_seconds = 0.0
        for first in range(0, leaves, batch):
            entries = _batch_entries(first, min(batch, leaves - first), filler)
            started = time.perf_counter()
            for entry in entries:
                hashlib.sha256(entry).digest()
            baseline_seconds += time.perf_counter() - started

        with engine.connect() as conn:
            size = log.tree_size(conn)
            root = log.root(conn)
            inclusion_ms, consistency_ms = [], []
            for _ in range(proofs):
                index = rng.randrange(size)
                started = time.perf_counter()
                proof = log.inclusion_proof(conn, index, size)
                inclusion_ms.append((time.perf_counter() - started) * 1000)
                entry = _batch_entries(index, 1, filler)[0]
                verify_inclusion(leaf_hash(entry), index, size, proof, root)
            for _ in range(proofs):
                size1 = rng.randrange(1, size + 1)
                started = time.perf_counter()
                proof = log.consistency_proof(conn, size1, size)
                consistency_ms.append((time.perf_counter() - started) * 1000)
                verify_consistency(size1, size, proof, log.root(conn, size1), root)
        engine.dispose()
        db_bytes = sum(p.stat().st_size for p in Path(folder).iterdir())
    return {
        "leaves": leaves,
        "batch": batch,
        "entry_bytes": entry_bytes,
        "sqlite_synchronous": synchronous,
        "appends_per_s": round(leaves / append_seconds),
        "baseline_hashes_per_s": round(leaves / max(baseline_seconds, 1e-9)),
        "inclusion_proof_ms": round(statistics.median(inclusion_ms), 4),
        "inclusion_proof_p95_ms": round(statistics.quantiles(inclusion_ms, n=20)[-1], 4),
        "consistency_proof_ms": round(statistics.median(consistency_ms), 4),
        "db_mib": round(db_bytes / 2**20, 1),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000, help="tree size to build (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=1000, help="entries per append_batch / transaction")
    parser.add_argument("--proofs", type=int, default=200, help="random proofs timed of each kind")
    parser.add_argument("--entry-bytes", type=int, default=120, help="size of each entry")
    parser.add_argument("--seed", type=int, default=6962)
    parser.add_argument(
        "--synchronous", choices=["OFF", "NORMAL", "FULL"], default="FULL", help="SQLite synchronous pragma (WAL)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    if args.leaves < 2 or args.batch < 1 or args.proofs < 2:
        parser.error("need --leaves >= 2, --batch >= 1, --proofs >= 2")
    result = run(args.leaves, args.batch, args.proofs, args.entry_bytes, args.seed, args.synchronous)
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>24}: {value}")


if __name__ == "__main__":
    main()
