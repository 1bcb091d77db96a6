"""Ingest benchmark: onshore's governed pipeline against plain sqlite3.executemany, same records, same run.

    python bench/ingest.py --records 200000 --json

Prints one JSON line:
  pipeline_records_per_s  library path: NDJSON bytes in -> admit, classify, minimise, store, ledger -> committed rows
  http_records_per_s      `onshore serve` in a subprocess, a client sending NDJSON batches of 1,000
  baseline_records_per_s  the same NDJSON bytes decoded (orjson) and inserted into SQLite by plain
                          sqlite3.executemany, one transaction per batch, same journal mode and
                          synchronous setting, no governance
  ratio                   pipeline / baseline
  schema_floor_records_per_s
                          the rows the pipeline stored, read back and inserted again by plain sqlite3.executemany into
                          a fresh database with onshore's own records table and indexes (one transaction per stored
                          batch, same synchronous): what the schema alone costs, with no Python stage at all
  schema_floor_ratio      schema_floor / baseline (the insert's own share of the gap)
  stored_share            rows stored / records sent (the rest were dropped at the consent gate or duplicates)
  postgres_records_per_s  the library path with every region's record store on PostgreSQL (throw-away databases)
  postgres_baseline_records_per_s
                          the same NDJSON bytes decoded and inserted by a plain psycopg executemany into a
                          PostgreSQL table of the baseline's columns, one transaction per batch
  postgres_ratio          postgres / postgres_baseline

With --no-ledger the pipeline appends its lifecycle events to a no-op journal instead of the Merkle ledger.
With --compare-ledger it runs the pipeline both ways (separate workspaces, same batches) and adds
  pipeline_no_ledger_records_per_s  the pipeline with the no-op journal
  ratio_no_ledger                   pipeline_no_ledger / baseline
  ledger_overhead                   1 - pipeline / pipeline_no_ledger (the share of throughput the ledger costs)
  ledger_append_share               time inside the ledger's appends / pipeline time (median of the ledger runs):
                                    the same cost measured inside one run, free of run-to-run noise
Runs alternate with and without the ledger (--compare-rounds, fresh workspaces) and the best of each is kept;
pipeline_records_per_s and ratio are then the best ledger run.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.sim.consents import grant_collection_consents
from onshore.sim.fleet import FleetSimulator, make_fleet
from onshore.sim.servers import start_server, stop_server
from onshore.web.server import free_port
from onshore.workspace import init_workspace


def make_batches(
    n_records: int, batch_size: int, vehicles: int, seed: int, *, eu_share: float = 0.25
) -> list[tuple[Any, bytes]]:
    fleet = FleetSimulator(make_fleet(vehicles, seed, eu_share=eu_share), start_ms=int(time.time() * 1000) - 86_400_000)
    return fleet.records_ndjson(n_records, max_records=batch_size)


def setup_workspace(
    folder: Path,
    fleet_vehicles: list[Any],
    *,
    consent_share: float,
    env: dict[str, str] | None = None,
    gateway: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """init a workspace, register the fleet (to ``gateway`` too, when given), grant consents to a share of it;
    returns tokens by VIN, and the workspace's API tokens (``gateway``, ``officer``...) by name."""
    config, api_tokens = init_workspace(folder)
    runtime = Runtime(load_settings(config, env=env or {}), create=True)
    tokens: dict[str, Any] = {t.name: t for t in api_tokens}
    try:
        for i, v in enumerate(fleet_vehicles):
            issued = runtime.vehicles.add(v.vin, v.market, gateway=gateway)
            tokens[v.vin] = issued
            if i < consent_share * len(fleet_vehicles):
                grant_collection_consents(runtime, issued.vehicle)
    finally:
        runtime.close()
    return config, tokens


class NoJournal:
    """A journal that drops lifecycle events: the pipeline without its ledger (``--no-ledger``)."""

    def append(self, conn: Any, entries: list[bytes]) -> int:
        return 0

    def tree_size(self, conn: Any) -> int:
        return 0


class TimedJournal:
    """Wraps a store's journal and adds up the seconds its appends take (the ledger's share of the pipeline)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def append(self, conn: Any, entries: list[bytes]) -> int:
        started = time.perf_counter()
        try:
            return int(self.inner.append(conn, entries))
        finally:
            self.seconds += time.perf_counter() - started

    def tree_size(self, conn: Any) -> int:
        return int(self.inner.tree_size(conn))


def bench_pipeline(
    config: Path,
    batches: list[tuple[Any, bytes]],
    tokens: dict[str, Any],
    *,
    ledger: bool = True,
    env: dict[str, str] | None = None,
    instrument: Callable[[Runtime], None] | None = None,
) -> tuple[float, int, float]:
    """Ingest every batch through the library; returns (seconds, records, seconds spent in ledger appends).

    ``instrument`` gets the runtime before the first batch (to wrap what a bench times)."""
    runtime = Runtime(load_settings(config, env=env or {}))
    if instrument is not None:
        instrument(runtime)
    journals = []
    for region in runtime.regions.values():
        journal = TimedJournal(region.store.journal if ledger else NoJournal())
        region.store.journal = journal
        journals.append(journal)
    try:
        accepted = 0
        start = time.perf_counter()
        for vehicle, body in batches:
            result = runtime.ingest.ingest_body(tokens[vehicle.vin].vehicle, body, "application/x-ndjson")
            accepted += result.accepted + result.dropped_no_consent + result.duplicate
        elapsed = time.perf_counter() - start
    finally:
        runtime.close()
    return elapsed, accepted, sum(j.seconds for j in journals) if ledger else 0.0


def baseline_rows(vehicle: Any, body: bytes) -> list[tuple[Any, ...]]:
    """What a plain ingest inserts for one NDJSON batch: decoded, the value re-encoded as JSON text."""
    loads, dumps = orjson.loads, orjson.dumps
    rows = []
    for line in body.splitlines():
        if line:
            rec = loads(line)
            rows.append((vehicle.vin, rec["msg_id"], rec["ts"], rec["signal"], dumps(rec["value"]).decode()))
    return rows


def bench_baseline(folder: Path, batches: list[tuple[Any, bytes]], synchronous: str) -> tuple[float, int]:
    db = sqlite3.connect(folder / "baseline.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, vin TEXT, msg_id TEXT, ts_ms INTEGER, signal TEXT, value TEXT)"
    )
    n = 0
    start = time.perf_counter()
    for vehicle, body in batches:
        rows = baseline_rows(vehicle, body)
        db.execute("BEGIN")
        db.executemany("INSERT INTO records (vin, msg_id, ts_ms, signal, value) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        n += len(rows)
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed, n


def bench_schema_floor(folder: Path, config: Path, synchronous: str) -> tuple[float, int]:
    """Re-insert every stored row of the pipeline run by plain executemany into onshore's own records schema.

    Rows go in the batches they were stored in (by ``store_idx``), one transaction each, into a fresh database per
    region with the records table and its indexes as the region's own store declares them.
    """
    runtime = Runtime(load_settings(config, env={}))
    paths = {name: str(region.store.engine.url.database) for name, region in runtime.regions.items()}
    runtime.close()
    elapsed, n = 0.0, 0
    for name, path in paths.items():
        source = sqlite3.connect(path)
        ddl = [
            sql
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_schema WHERE tbl_name = 'records' AND sql IS NOT NULL ORDER BY type DESC"
            )
        ]
        cols = [r[1] for r in source.execute("PRAGMA table_info(records)") if r[1] != "id"]
        rows = source.execute(f"SELECT store_idx, {', '.join(cols)} FROM records ORDER BY id").fetchall()
        source.close()
        target = sqlite3.connect(folder / f"floor-{name}.sqlite", isolation_level=None)
        target.execute("PRAGMA journal_mode=WAL")
        target.execute(f"PRAGMA synchronous={synchronous}")
        for sql in ddl:
            target.execute(sql)
        insert = f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        batches: dict[Any, list[tuple[Any, ...]]] = {}
        for row in rows:
            batches.setdefault(row[0], []).append(row[1:])
        start = time.perf_counter()
        for batch in batches.values():
            target.execute("BEGIN IMMEDIATE")
            target.executemany(insert, batch)
            target.execute("COMMIT")
        elapsed += time.perf_counter() - start
        n += len(rows)
        target.close()
    return elapsed, n


@contextlib.contextmanager
def throwaway_pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards (as the tests' fresh_pg_database)."""
    import psycopg

    name = f"onshore_bench_{secrets.token_hex(4)}"
    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield "postgresql+psycopg://" + dsn.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_baseline_inserter(db: Any) -> Callable[[Any, bytes], int]:
    """Create the baseline's table on the psycopg connection ``db``; returns ``insert(vehicle, body)``, which
    decodes one NDJSON batch, inserts its rows by one executemany and commits (returns the rows)."""
    db.execute(
        "CREATE TABLE baseline_records (id BIGSERIAL PRIMARY KEY, vin TEXT, msg_id TEXT, ts_ms BIGINT,"
        " signal TEXT, value TEXT)"
    )
    db.commit()

    def insert(vehicle: Any, body: bytes) -> int:
        rows = baseline_rows(vehicle, body)
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO baseline_records (vin, msg_id, ts_ms, signal, value) VALUES (%s, %s, %s, %s, %s)", rows
            )
        db.commit()
        return len(rows)

    return insert


def bench_pg_baseline(url: str, batches: list[tuple[Any, bytes]]) -> tuple[float, int]:
    """The SQLite baseline's work on PostgreSQL: decode, then one psycopg executemany and commit per batch."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db:
        insert = pg_baseline_inserter(db)
        start = time.perf_counter()
        n = sum(insert(vehicle, body) for vehicle, body in batches)
        elapsed = time.perf_counter() - start
    return elapsed, n


Request = tuple[str, str, bytes, dict[str, str]]  # (order key, path, body, headers)


def ndjson_requests(batches: list[tuple[Any, bytes]], tokens: dict[str, Any]) -> list[Request]:
    """``POST /v1/ingest`` of every batch with its vehicle's own token, keyed by VIN (`post_requests`)."""
    return [
        (
            vehicle.vin,
            "/v1/ingest",
            body,
            {"Authorization": f"Bearer {tokens[vehicle.vin].token}", "Content-Type": "application/x-ndjson"},
        )
        for vehicle, body in batches
    ]


def post_requests(base: str, requests: list[Request], threads: int, status: int = 200) -> tuple[float, list[Any]]:
    """POST every request from ``threads`` keep-alive clients; returns (seconds, the JSON answers).

    Requests of one key (a vehicle) go in order from one thread; keys are spread over threads.

    Raises:
        RuntimeError: an answer other than ``status`` (its text in the message).
    """
    by_thread: list[list[Request]] = [[] for _ in range(threads)]
    for request in requests:
        by_thread[hash(request[0]) % threads].append(request)
    answers: list[Any] = []
    failures: list[str] = []

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _, path, body, headers in by_thread[i]:
                r = client.post(path, content=body, headers=headers)
                if r.status_code != status:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    return
                answers.append(r.json())

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"http ingest failed: {failures[0]}")
    return elapsed, answers


def bench_http(
    config: Path, batches: list[tuple[Any, bytes]], tokens: dict[str, Any], threads: int
) -> tuple[float, int]:
    """`onshore serve` (embedded) for ``config``, every batch sent as NDJSON; returns (seconds, records answered)."""
    proc = start_server(config, port := free_port(), config.parent / "serve.log")
    try:
        elapsed, answers = post_requests(f"http://127.0.0.1:{port}", ndjson_requests(batches, tokens), threads)
    finally:
        stop_server(proc)
    return elapsed, sum(j["accepted"] + j["dropped_no_consent"] + j["duplicate"] for j in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="records per batch (all paths)")
    parser.add_argument("--threads", type=int, default=4, help="HTTP client threads")
    parser.add_argument("--consent-share", type=float, default=0.6, help="share of vehicles with consents")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--no-ledger", action="store_true", help="append lifecycle events to a no-op journal")
    parser.add_argument(
        "--compare-ledger", action="store_true", help="also run the pipeline without the ledger; report the overhead"
    )
    parser.add_argument("--compare-rounds", type=int, default=3, help="with/without rounds of --compare-ledger")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--skip-postgres", action="store_true", help="leave out the PostgreSQL runs")
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where throw-away databases may be created",
    )
    args = parser.parse_args()

    batches = make_batches(args.records, args.batch, args.vehicles, args.seed)
    fleet_vehicles = list({id(v): v for v, _ in batches}.values())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config, tokens = setup_workspace(folder / "lib", fleet_vehicles, consent_share=args.consent_share)
        synchronous = load_settings(config, env={}).regions["cn"].sqlite_synchronous
        base_s, base_n = bench_baseline(folder, batches, synchronous)
        pipe_s, pipe_n, ledger_s = bench_pipeline(config, batches, tokens, ledger=not args.no_ledger)
        result: dict[str, Any] = {
            "records": args.records,
            "batch": args.batch,
            "sqlite_synchronous": synchronous,
            "ledger": not args.no_ledger,
            "pipeline_records_per_s": round(pipe_n / pipe_s),
            "baseline_records_per_s": round(base_n / base_s),
            "ratio": round((pipe_n / pipe_s) / (base_n / base_s), 3),
        }
        floor_s, floor_n = bench_schema_floor(folder, config, synchronous)
        result["schema_floor_records_per_s"] = round(floor_n / floor_s)
        result["schema_floor_ratio"] = round((floor_n / floor_s) / (base_n / base_s), 3)
        result["stored_share"] = round(floor_n / pipe_n, 3)
        if args.compare_ledger and not args.no_ledger:
            # Alternate runs with and without the ledger (fresh workspaces, same batches) and keep the best
            # of each: on a noisy machine the best run is the least disturbed one.
            with_ledger, without = [(pipe_n / pipe_s, ledger_s / pipe_s)], []
            for round_ in range(args.compare_rounds):
                for ledger in (False, True):
                    cfg, tok = setup_workspace(
                        folder / f"cmp-{round_}-{ledger}", fleet_vehicles, consent_share=args.consent_share
                    )
                    run_s, run_n, run_ledger_s = bench_pipeline(cfg, batches, tok, ledger=ledger)
                    (with_ledger if ledger else without).append((run_n / run_s, run_ledger_s / run_s))
            best, best_bare = max(with_ledger)[0], max(without)[0]
            result["pipeline_records_per_s"] = round(best)
            result["ratio"] = round(best / (base_n / base_s), 3)
            result["pipeline_no_ledger_records_per_s"] = round(best_bare)
            result["ratio_no_ledger"] = round(best_bare / (base_n / base_s), 3)
            result["ledger_overhead"] = round(1 - best / best_bare, 3)
            result["ledger_append_share"] = round(sorted(share for _, share in with_ledger)[len(with_ledger) // 2], 4)
            result["compare_runs"] = {"ledger": len(with_ledger), "no_ledger": len(without)}
        if not args.skip_postgres:
            with throwaway_pg_database(args.pg_admin_url) as url:
                pg_base_s, pg_base_n = bench_pg_baseline(url, batches)
            # every region's record store on PostgreSQL, one throw-away database each (a region owns its tables)
            with throwaway_pg_database(args.pg_admin_url) as cn_url, throwaway_pg_database(args.pg_admin_url) as eu_url:
                env = {"ONSHORE_REGIONS__CN__RECORD_STORE": cn_url, "ONSHORE_REGIONS__EU__RECORD_STORE": eu_url}
                pg_config, pg_tokens = setup_workspace(
                    folder / "pg", fleet_vehicles, consent_share=args.consent_share, env=env
                )
                pg_s, pg_n, _ = bench_pipeline(pg_config, batches, pg_tokens, ledger=not args.no_ledger, env=env)
            result["postgres_records_per_s"] = round(pg_n / pg_s)
            result["postgres_baseline_records_per_s"] = round(pg_base_n / pg_base_s)
            result["postgres_ratio"] = round((pg_n / pg_s) / (pg_base_n / pg_base_s), 3)
        if not args.skip_http:
            http_config, http_tokens = setup_workspace(
                folder / "http", fleet_vehicles, consent_share=args.consent_share
            )
            http_s, http_n = bench_http(http_config, batches, http_tokens, args.threads)
            result["http_records_per_s"] = round(http_n / http_s)
            result["http_ratio"] = round((http_n / http_s) / (base_n / base_s), 3)
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
