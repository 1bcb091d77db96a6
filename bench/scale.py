"""Scale-out benchmark: one and two workers draining a filled NATS JetStream stream into PostgreSQL, the gateway
that filled it, the embedded server, MQTT and fleet-telemetry HTTP, and a plain baseline, all in one run.

    python bench/scale.py --json            (about 1 minute on two quiet cores; --quick for a smoke run)

Prints one JSON line (a table without --json):
  embedded_records_per_s        `onshore serve` embedded (SQLite), NDJSON batches over HTTP (bench/ingest.py's path)
  gateway_records_per_s         `onshore serve --role gateway` admitting the same batches and publishing them
                                (HTTP 202), while it fills the stream of the one-worker phase
  gateway_cpu_s_per_1k_records  the gateway process's CPU seconds per 1,000 records admitted and published
  one_worker_records_per_s      one `onshore worker --region cn` draining the filled stream into PostgreSQL
  two_workers_records_per_s     two workers, the same batches, a fresh database and stream
  worker_cpu_s_per_1k_records   {"one": ..., "two": ...}: the workers' CPU seconds per 1,000 records stored
  postgres_cpu_s_per_1k_records, nats_cpu_s_per_1k_records
                                {"one": ..., "two": ...}: every postgres and nats-server process, same windows
  database_bytes_per_record, wal_bytes_per_record
                                {"one": ..., "two": ...}: growth of the database, and of the server's WAL (every
                                database of the server), per record stored during the drain
  record_bytes_ndjson           mean bytes of one record on the wire (NDJSON)
  two_over_one_ratio            two_workers / one_worker (the aim: >= 1.6)
  cpu_per_record_two_over_one   worker CPU per record, two workers / one (flat is 1.0)
  machine_busy_share            {"one": ..., "two": ...}: the busy share of all cores during each drain
  bottleneck                    what ran out in the two-worker phase (cpu when the machine was >= 90 % busy)
  small_batches                 the one-worker phase again with batches of --small-batch records (10: what one
                                fleet-telemetry payload or one MQTT flush per vehicle carries): its rate and CPU
  worker_cpu_split, gateway_cpu_split, postgres_cpu_split, nats_cpu_split
                                CPU per record = per_record_ms + per_batch_ms / batch size, solved from the two
                                batch sizes (mean_batch_records and small_batches.mean_records)
  region_lock_ms_per_transaction, region_lock_share, region_ceiling_records_per_s
                                the library pipeline on PostgreSQL in this process (bench/ingest.py's path, same
                                batches): how long each write transaction holds the region's write lock, which
                                every worker of a region queues on; its share of the pipeline's time; and the
                                records per second one region can commit at most (records per batch / hold time);
                                small_batches holds the same three for the small batches
  mqtt_records_per_s            `onshore mqtt` (embedded, SQLite) storing the batches published to the broker on
                                the onshore batch topic (QoS 1): first publish to the last row stored
  fleet_telemetry_http_records_per_s
                                fleet-telemetry V payloads (protobuf, one per vehicle and tick: the fields that
                                changed) posted by a gateway token to /v1/ingest/fleet-telemetry (embedded)
  baseline_records_per_s        the same NDJSON bytes through NATS without onshore: one consumer fetching from a
                                work-queue stream, a plain psycopg executemany per batch, then the ack
  baseline_publish_records_per_s
                                publishing those bytes, one confirmed publish at a time
  one_worker_over_baseline      one_worker / baseline

Every vehicle has consented (the consent gate passes every record), so stored rows must equal the records sent;
the script exits 1 when a drain stored another number. A worker's window starts when every worker of the phase
has logged that it consumes (their start-up is not timed) and ends when the stream is empty.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg

from onshore.config import load_settings
from onshore.ingest.nats_bus import NatsBus
from onshore.sim.fleet import FleetSimulator
from onshore.sim.servers import start_server, stop_server
from onshore.sim.signals import FLEET_TELEMETRY
from onshore.web.server import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # noqa: E402
    bench_http,
    bench_pipeline,
    make_batches,
    ndjson_requests,
    pg_baseline_inserter,
    post_requests,
    setup_workspace,
    throwaway_pg_database,
)
from scale_probes import (  # noqa: E402
    CpuWindow,
    TransactionTimer,
    bottleneck,
    fleet_telemetry_payloads,
    nats_baseline,
    per_1k,
    publish_batches,
    remove_bus_prefix,
    run,
    split_cost,
    wait_for_log,
)

Batches = list[tuple[Any, bytes]]


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _stored(url: str) -> int:
    with psycopg.connect(_dsn(url)) as db:
        row = db.execute("SELECT count(*) FROM records").fetchone()
    return int(row[0]) if row else 0


def _disk(url: str) -> tuple[int, int]:
    """(the database's size, the server's WAL position) in bytes."""
    with psycopg.connect(_dsn(url)) as db:
        row = db.execute(
            "SELECT pg_database_size(current_database()), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@contextlib.contextmanager
def distributed(args: argparse.Namespace, folder: Path, vehicles: list[Any]) -> Iterator[tuple[Path, dict, dict]]:
    """A workspace of distributed mode: cn on a throw-away PostgreSQL database, a bus prefix of its own (removed
    after); yields (config, tokens, the environment its processes need)."""
    prefix = f"bench{secrets.token_hex(4)}"
    with throwaway_pg_database(args.pg_admin_url) as url:
        env = {
            "ONSHORE_BUS__KIND": "nats",
            "ONSHORE_BUS__URL": args.nats_url,
            "ONSHORE_BUS__PREFIX": prefix,
            "ONSHORE_REGIONS__CN__RECORD_STORE": url,
        }
        try:
            config, tokens = setup_workspace(folder, vehicles, consent_share=1.0, env=env)
            yield config, tokens, env
        finally:
            run(remove_bus_prefix(args.nats_url, prefix, ("cn", "eu")))


def fill(config: Path, env: dict[str, str], batches: Batches, tokens: dict, threads: int) -> dict[str, Any]:
    """A gateway admits and publishes every batch; returns its rate and CPU, once the stream holds them all."""
    port = free_port()
    gateway = start_server(config, port, config.parent / "gateway.log", env=env)
    try:
        window = CpuWindow([gateway.pid]).start()
        _, answers = post_requests(f"http://127.0.0.1:{port}", ndjson_requests(batches, tokens), threads, status=202)
        window.stop()
    finally:
        stop_server(gateway)
    bus = NatsBus(load_settings(config, env=env).bus, name="bench-scale")
    try:
        depth = bus.depth("cn")
    finally:
        bus.close()
    if len(answers) != len(batches) or depth["messages"] != len(batches):
        raise RuntimeError(f"{len(batches)} batches sent, {len(answers)} acknowledged, {depth['messages']} in stream")
    records = sum(body.count(b"\n") for _, body in batches)
    return {"records_per_s": records / window.seconds, "cpu_s_per_1k": per_1k(window.process_s, records)}


def drain(config: Path, env: dict[str, str], workers: int, records: int) -> dict[str, Any]:
    """Start ``workers`` workers on the filled stream; time them from all consuming until it is empty."""
    settings = load_settings(config, env=env)
    url = settings.regions["cn"].record_store
    procs: list[subprocess.Popen[bytes]] = []
    logs = [config.parent / f"worker-{workers}-{n}.log" for n in range(workers)]
    bus = NatsBus(settings.bus, name="bench-scale")
    try:
        for log in logs:
            with log.open("ab") as out:
                command = [sys.executable, "-m", "onshore", "worker", "--region", "cn", "-c", str(config), "--json"]
                procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}))
        for proc, log in zip(procs, logs, strict=True):
            wait_for_log(log, "consuming", 120, proc)
        before = _stored(url)
        disk_before = _disk(url)
        window = CpuWindow([p.pid for p in procs]).start()
        while bus.depth("cn")["messages"] > 0:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited: {logs[0].read_text(errors='replace')[-1500:]}")
            time.sleep(0.05)
        window.stop()
        after = _stored(url)
        disk_after = _disk(url)
    finally:
        bus.close()
        for proc in procs:
            stop_server(proc)
    if after != records:
        raise RuntimeError(f"{records} records sent, {after} stored")
    done = after - before
    assert window.services_s is not None
    return {
        "records_per_s": done / window.seconds,
        "records_timed": done,
        "cpu_s_per_1k": per_1k(window.process_s, done),
        "postgres_cpu_s_per_1k": per_1k(window.services_s["postgres"], done),
        "nats_cpu_s_per_1k": per_1k(window.services_s["nats-server"], done),
        "database_bytes_per_record": round((disk_after[0] - disk_before[0]) / max(1, done)),
        "wal_bytes_per_record": round((disk_after[1] - disk_before[1]) / max(1, done)),
        "busy_share": round(window.busy_share, 3),
        "cores_used": window.cores_used("workers"),
    }


def bench_mqtt(args: argparse.Namespace, folder: Path, vehicles: list[Any], batches: Batches) -> float:
    """`onshore mqtt` (embedded) storing the batches published on the onshore batch topic; records per second."""
    config, _ = setup_workspace(folder, vehicles, consent_share=1.0, gateway="gateway")
    host, _, port = args.mqtt.rpartition(":")
    root = f"bench{secrets.token_hex(5)}"
    env = {
        "ONSHORE_MQTT__HOST": host,
        "ONSHORE_MQTT__PORT": port,
        "ONSHORE_MQTT__TOPIC_ROOT": root,
        "ONSHORE_MQTT__CLIENT_ID": f"{root}-1",
        "ONSHORE_MQTT__SESSION_EXPIRY_S": "60",
    }
    log = folder / "mqtt.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onshore", "mqtt", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, **env},
        )
    records = sum(body.count(b"\n") for _, body in batches)
    database = folder / "onshore-data" / "cn" / "records.sqlite"
    try:
        wait_for_log(log, "subscribed to", 60, proc)
        started = time.perf_counter()
        publish_batches(host, int(port), [(f"{root}/gateway/onshore/{v.vin}/batch", body) for v, body in batches])
        deadline = time.monotonic() + 600
        while (stored := _sqlite_rows(database)) < records:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"mqtt: {stored} of {records} stored: {log.read_text(errors='replace')[-1500:]}")
            time.sleep(0.05)
        return records / (time.perf_counter() - started)
    finally:
        stop_server(proc)


def _sqlite_rows(path: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM records").fetchone()[0])


def bench_fleet_telemetry(folder: Path, vehicles: list[Any], n_records: int, threads: int) -> tuple[float, int]:
    """fleet-telemetry V payloads posted by the gateway (embedded); returns (records per second, requests)."""
    ft_vehicles = [v for v in vehicles if v.dialect == FLEET_TELEMETRY]
    config, tokens = setup_workspace(folder, ft_vehicles, consent_share=1.0, gateway="gateway")
    payloads = fleet_telemetry_payloads(FleetSimulator(ft_vehicles, int(time.time() * 1000) - 3_600_000), n_records)
    headers = {"Authorization": f"Bearer {tokens['gateway'].token}", "Content-Type": "application/x-protobuf"}
    requests = [(v.vin, "/v1/ingest/fleet-telemetry?type=V", body, headers) for v, body, _ in payloads]
    proc = start_server(config, port := free_port(), folder / "serve.log")
    try:
        elapsed, answers = post_requests(f"http://127.0.0.1:{port}", requests, threads)
    finally:
        stop_server(proc)
    received = sum(a["received"] for a in answers)
    if received != sum(n for _, _, n in payloads):
        raise RuntimeError(f"fleet-telemetry: {received} records received of {sum(n for _, _, n in payloads)}")
    return received / elapsed, len(requests)


def bench_baseline(args: argparse.Namespace, batches: Batches) -> tuple[float, float]:
    """(consume-and-insert, publish) records per second of plain NATS and psycopg on the same bytes."""
    by_vin = {v.vin: v for v, _ in batches}
    records = sum(body.count(b"\n") for _, body in batches)
    with throwaway_pg_database(args.pg_admin_url) as url, psycopg.connect(_dsn(url)) as db:
        insert = pg_baseline_inserter(db)
        published_s, consumed_s = run(
            nats_baseline(
                args.nats_url,
                f"bench{secrets.token_hex(4)}",
                [(v.vin, body) for v, body in batches],
                lambda vin, body: insert(by_vin[vin], body),
            )
        )
    return records / consumed_s, records / published_s


def bench_region_lock(args: argparse.Namespace, folder: Path, vehicles: list[Any], batches: Batches) -> dict:
    """The library pipeline on PostgreSQL (one process): how long each write transaction holds the region's lock."""
    with throwaway_pg_database(args.pg_admin_url) as url:
        env = {"ONSHORE_REGIONS__CN__RECORD_STORE": url}
        config, tokens = setup_workspace(folder, vehicles, consent_share=1.0, env=env)
        timer = TransactionTimer()
        seconds, records, _ = bench_pipeline(config, batches, tokens, env=env, instrument=timer)
    hold_s = timer.seconds / max(1, timer.count)
    return {
        "region_lock_ms_per_transaction": round(hold_s * 1000, 2),
        "region_lock_share": round(timer.seconds / seconds, 3),
        "region_ceiling_records_per_s": round(records / max(1, timer.count) / hold_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000, help="records of each worker phase (and embedded)")
    parser.add_argument("--ft-records", type=int, default=None, help="fleet-telemetry records (default records/25)")
    parser.add_argument("--vehicles", type=int, default=20, help="so that most batches are full: records/vehicles")
    parser.add_argument("--batch", type=int, default=1000, help="records per NDJSON batch (at most)")
    parser.add_argument("--threads", type=int, default=4, help="HTTP client threads")
    parser.add_argument("--small-batch", type=int, default=10, help="records per batch of the small-batch phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4,000 records in batches of 250")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--nats-url", default=os.environ.get("ONSHORE_TEST_NATS", "nats://127.0.0.1:4222"))
    parser.add_argument("--mqtt", default=os.environ.get("ONSHORE_TEST_MQTT", "127.0.0.1:1883"), help="HOST:PORT")
    args = parser.parse_args()
    if args.quick:
        args.records, args.batch, args.vehicles = 4000, 250, 4
    n = args.records
    batches = make_batches(n, args.batch, args.vehicles, args.seed, eu_share=0.0)  # region cn: its workers
    vehicles = list({id(v): v for v, _ in batches}.values())
    cores = os.cpu_count() or 1
    result: dict[str, Any] = {"records": n, "batch": args.batch, "vehicles": len(vehicles), "cores": cores}
    result["load_average_at_start"] = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline, baseline_publish = bench_baseline(args, batches)
        phases = {}
        for workers, name in ((1, "one"), (2, "two")):
            with distributed(args, folder / f"workers-{workers}", vehicles) as (config, tokens, env):
                gateway = fill(config, env, batches, tokens, args.threads)
                phases[name] = drain(config, env, workers, n)
            if workers == 1:
                result["gateway_records_per_s"] = round(gateway["records_per_s"])
                result["gateway_cpu_s_per_1k_records"] = gateway["cpu_s_per_1k"]
        small_n = max(args.small_batch * 20, n // 10)
        small = make_batches(small_n, args.small_batch, args.vehicles, args.seed + 1, eu_share=0.0)
        with distributed(args, folder / "small", list({id(v): v for v, _ in small}.values())) as (config, tokens, env):
            small_gateway = fill(config, env, small, tokens, args.threads)
            small_worker = drain(config, env, 1, small_n)
        lock = bench_region_lock(args, folder / "lock", vehicles, batches)
        small_lock = bench_region_lock(args, folder / "lock-small", list({id(v): v for v, _ in small}.values()), small)
        config, tokens = setup_workspace(folder / "embedded", vehicles, consent_share=1.0)
        embedded_s, embedded_n = bench_http(config, batches, tokens, args.threads)
        mqtt = bench_mqtt(args, folder / "mqtt", vehicles, batches)
        ft, ft_requests = bench_fleet_telemetry(folder / "ft", vehicles, args.ft_records or n // 25, args.threads)
    one, two = phases["one"], phases["two"]
    mean_batch, small_mean = n / len(batches), small_n / len(small)
    result |= {
        "embedded_records_per_s": round(embedded_n / embedded_s),
        "one_worker_records_per_s": round(one["records_per_s"]),
        "two_workers_records_per_s": round(two["records_per_s"]),
        "worker_cpu_s_per_1k_records": {k: phases[k]["cpu_s_per_1k"] for k in phases},
        "postgres_cpu_s_per_1k_records": {k: phases[k]["postgres_cpu_s_per_1k"] for k in phases},
        "nats_cpu_s_per_1k_records": {k: phases[k]["nats_cpu_s_per_1k"] for k in phases},
        "two_over_one_ratio": round(two["records_per_s"] / one["records_per_s"], 3),
        "cpu_per_record_two_over_one": round(two["cpu_s_per_1k"] / one["cpu_s_per_1k"], 3),
        "database_bytes_per_record": {k: phases[k]["database_bytes_per_record"] for k in phases},
        "wal_bytes_per_record": {k: phases[k]["wal_bytes_per_record"] for k in phases},
        "record_bytes_ndjson": round(sum(len(body) for _, body in batches) / n),
        "machine_busy_share": {k: phases[k]["busy_share"] for k in phases},
        "cores_used": {k: phases[k]["cores_used"] for k in phases},
        "records_timed": {k: phases[k]["records_timed"] for k in phases},
        "bottleneck": bottleneck(two, cores),
        "small_batches": {
            "mean_records": round(small_mean, 1),
            "records": small_n,
            "one_worker_records_per_s": round(small_worker["records_per_s"]),
            "worker_cpu_s_per_1k_records": small_worker["cpu_s_per_1k"],
            "postgres_cpu_s_per_1k_records": small_worker["postgres_cpu_s_per_1k"],
            "nats_cpu_s_per_1k_records": small_worker["nats_cpu_s_per_1k"],
            "database_bytes_per_record": small_worker["database_bytes_per_record"],
            "gateway_cpu_s_per_1k_records": small_gateway["cpu_s_per_1k"],
            **small_lock,
        },
        "mean_batch_records": round(mean_batch, 1),
        **{
            f"{name}_cpu_split": split_cost(large, mean_batch, small_cost, small_mean)
            for name, large, small_cost in (
                ("worker", one["cpu_s_per_1k"], small_worker["cpu_s_per_1k"]),
                ("gateway", result["gateway_cpu_s_per_1k_records"], small_gateway["cpu_s_per_1k"]),
                ("postgres", one["postgres_cpu_s_per_1k"], small_worker["postgres_cpu_s_per_1k"]),
                ("nats", one["nats_cpu_s_per_1k"], small_worker["nats_cpu_s_per_1k"]),
            )
        },
        **lock,
        "mqtt_records_per_s": round(mqtt),
        "fleet_telemetry_http_records_per_s": round(ft),
        "fleet_telemetry_requests": ft_requests,
        "baseline_records_per_s": round(baseline),
        "baseline_publish_records_per_s": round(baseline_publish),
        "one_worker_over_baseline": round(one["records_per_s"] / baseline, 3),
        "seconds": round(time.perf_counter() - started),
    }
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:>36}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
