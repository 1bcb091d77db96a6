"""Border benchmark: the gate's decision latency, and a release through transforms against a plain write.

    python bench/border.py --json
    python bench/border.py --records 500000 --decisions 50000 --json

Prints one JSON line:
  decisions_per_s         gate decisions per second: one request of 6 data classes (general, PI, sensitive PI,
                          important, a sensitive-zone class, external images) against 3 recorded bases, the
                          counts and bases already read (the gate itself, as the API calls it after its reads)
  decision_p99_ms         99th percentile of one such decision, milliseconds
  dry_run_ms              median of a whole dry run (`export decide`: SQL aggregation, counters, gate)
  export_records_per_s    `BorderService.run`: select, decrypt, transform (drop identifiers, coarsen positions
                          and times, suppress zone positions, per-recipient pseudonyms), write Parquet, manifest,
                          counters and ledger events, over the same records
  baseline_records_per_s  the same records read by the same selection and written untransformed to Parquet
                          with pyarrow (same writer settings), same run
  export_ratio            export / baseline

Personal values are stored encrypted (per-subject AES-GCM keys, as ingest stores them) unless --plain; both
paths then decrypt them, so the ratio measures the gate's own cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from onshore.border.bases import parse_spec
from onshore.border.counters import BasisUsage, PeopleCount
from onshore.border.exporter import open_values
from onshore.border.requests import parse_request
from onshore.border.selection import DataClass, RecordSelection
from onshore.config import load_settings
from onshore.model import RecordColumns
from onshore.runtime import Runtime
from onshore.storage.crypto import encrypt_values
from onshore.storage.records import insert_records
from onshore.workspace import init_workspace

AT = dt.datetime(2024, 6, 15, 12, tzinfo=dt.UTC)
SIGNALS = (  # (signal, rule, categories, tags, value, zone)
    ("VehicleSpeed", "cn.sig.vehicle-operational", "general", "vehicle_operational", 42.5, None),
    ("MilesToArrival", "cn.sig.trip", "personal", "trip", 3.2, None),
    ("Location", "cn.sig.location", "personal,sensitive_personal", "location,trajectory", "point", None),
    ("Location", "cn.sig.location", "personal,sensitive_personal,important", "location,trajectory,sensitive_area",
     "zone", "illustrative"),
)  # fmt: skip


def plant(runtime: Runtime, n: int, vehicles: int, encrypt: bool) -> None:
    region = runtime.regions["cn"]
    ts0 = int((AT - dt.timedelta(days=2)).timestamp() * 1000)
    rows: list[list[Any]] = []
    for i in range(n):
        kind = 0 if i % 10 < 4 else 1 if i % 10 < 6 else 3 if i % 50 == 7 else 2  # 40/20/38/2 %
        signal, rule, cats, tags, value, zone = SIGNALS[kind]
        v = i % vehicles
        if value == "point":
            value = {"latitude": 31.2 + (i % 997) / 10_000, "longitude": 121.4 + (i % 991) / 10_000}
        elif value == "zone":
            value = {"latitude": 26.6475, "longitude": 106.71}
        ref = f"{v:032x}"
        rows.append([ref, f"m{i}", ts0 + i, signal, orjson.dumps(value).decode(), cats, tags, "navigation", rule,
                     "CN", zone, ts0, f"sub_{v:024x}"])  # fmt: skip
    if encrypt:
        by_subject: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            if "personal" in row[5].split(","):
                by_subject.setdefault(row[12], []).append(i)
        keys = region.subject_keys.keys_for(by_subject, create=True)
        for subject, idx in by_subject.items():
            sealed = encrypt_values(keys[subject], "cn", rows[idx[0]][0], [rows[i][1] for i in idx],
                                    [rows[i][4] for i in idx])  # fmt: skip
            for i, text in zip(idx, sealed, strict=True):
                rows[i][4] = text
    with region.store.transaction("bench plant") as conn:
        insert_records(conn, RecordColumns.from_rows(rows), None)


def make_request(**over: Any) -> Any:
    since = (AT - dt.timedelta(days=30)).isoformat()
    body = {"region": "cn", "destination": "DE", "recipient": "acme-gmbh", "purpose": "diagnostics", "since": since,
            "until": AT.isoformat(), "fleet": "all", **over}  # fmt: skip
    return parse_request(body)


def add_bases(runtime: Runtime) -> None:
    scope = {"purposes": ["diagnostics"], "recipient": "acme-gmbh", "destinations": ["DE"]}
    specs = [
        {"id": "cn-sa-1", "route": "security_assessment",
         "scope": {**scope, "categories": ["important", "personal", "sensitive_personal"]},
         "conditions": [{"name": "coarsen_time", "params": {"bucket_s": 60}}]},
        {"id": "cn-scc-1", "route": "standard_contract",
         "scope": {**scope, "categories": ["personal", "sensitive_personal"]},
         "conditions": [{"name": "coarsen_position", "params": {"cell_deg": 0.01}},
                        {"name": "coarsen_time", "params": {"bucket_s": 60}}]},
        {"id": "cn-ex-1", "route": "exemption", "scope": {**scope, "categories": ["personal"]}},
    ]  # fmt: skip
    for spec in specs:
        runtime.border.add_basis(parse_spec({"region": "cn", **spec}), actor_role="officer")
        runtime.border.approve_basis(spec["id"], approved_on=dt.date(2024, 4, 1), actor_role="officer")


def bench_decisions(runtime: Runtime, n: int) -> tuple[float, float]:
    gate = runtime.border.gate(runtime.regions["cn"])
    classes = [
        DataClass("cn.sig.vehicle-operational", ("general",), ("vehicle_operational",), ("VehicleSpeed",), 1000, 90),
        DataClass("cn.sig.trip", ("personal",), ("trip",), ("MilesToArrival",), 800, 90),
        DataClass("cn.sig.location", ("personal", "sensitive_personal"), ("location", "trajectory"), ("Location",),
                  900, 90),
        DataClass("cn.sig.charging-network", ("important",), ("charging_network",), ("DCChargingPower",), 300, 40),
        DataClass("cn.sig.location", ("personal", "sensitive_personal", "important"),
                  ("location", "trajectory", "sensitive_area"), ("Location",), 20, 5),
        DataClass("cn.sig.external-camera", ("personal",), ("external_image",), ("SentryMode",), 50, 20),
    ]  # fmt: skip
    counts = {need: PeopleCount(need[0], need[1], 54_321, 90) for need in gate.counting_needs(AT)}
    with runtime.regions["cn"].store.read("bench") as conn:
        bases = runtime.border.bases.in_region(conn, runtime.regions["cn"])
    usage = {b.id: BasisUsage(b.id, 1000, 90, 5000, 3) for b in bases}
    request = make_request()
    for _ in range(200):  # warm up
        gate.decide(request, classes, counts, bases, usage, AT)
    times = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        gate.decide(request, classes, counts, bases, usage, AT)
        times.append(clock() - t)
    times.sort()
    return n / (sum(times) / 1e9), times[int(len(times) * 0.99)] / 1e6


def bench_dry_run(runtime: Runtime, repeats: int = 5) -> float:
    request = make_request()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        runtime.border.decide(request, at=AT)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


# The columns the baseline writes: what the gate reads of a record.
ROW_COLUMNS = ("id", "vehicle_ref", "msg_id", "ts_ms", "signal", "value", "categories", "tags", "purpose", "rule_id",
               "zone", "subject_ref")  # fmt: skip


def bench_baseline(runtime: Runtime, out: Path) -> tuple[float, int]:
    """The same records, read by the same selection, written as they are (decrypted) to Parquet."""
    region = runtime.regions["cn"]
    schema = pa.schema([(name, pa.int64() if name in ("id", "ts_ms") else pa.string()) for name in ROW_COLUMNS])
    start = time.perf_counter()
    written = 0
    with pq.ParquetWriter(out, schema) as writer, region.store.read("bench baseline") as conn:
        for chunk in RecordSelection(make_request()).iter_rows(conn):
            values = open_values(region, chunk)
            cols = [[getattr(r, name) for r in chunk] for name in ROW_COLUMNS]
            cols[ROW_COLUMNS.index("value")] = values
            writer.write_table(pa.table([pa.array(c, t) for c, t in zip(cols, schema.types, strict=True)],
                                        schema=schema))  # fmt: skip
            written += len(chunk)
    return written / (time.perf_counter() - start), written


def bench_export(runtime: Runtime, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    result = runtime.border.run(make_request(), out, actor_role="officer", at=AT)
    elapsed = time.perf_counter() - start
    assert result.manifest is not None
    selected = sum(c.data_class.records for c in result.decision.classes if c.decision != "deny")
    return selected / elapsed, result.manifest["counts"]["records"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--vehicles", type=int, default=5_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--plain", action="store_true", help="store personal values unencrypted")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onshore-bench-border-") as tmp:
        folder = Path(tmp)
        config, _ = init_workspace(folder)
        runtime = Runtime(load_settings(config, env={}), create=True)
        try:
            plant(runtime, args.records, args.vehicles, encrypt=not args.plain)
            add_bases(runtime)
            decisions_per_s, p99_ms = bench_decisions(runtime, args.decisions)
            dry_run_ms = bench_dry_run(runtime)
            baseline, base_rows = bench_baseline(runtime, folder / "baseline.parquet")
            export, released = bench_export(runtime, folder / "bundle")
        finally:
            runtime.close()
    result = {
        "decisions_per_s": round(decisions_per_s),
        "decision_p99_ms": round(p99_ms, 4),
        "dry_run_ms": round(dry_run_ms, 1),
        "export_records_per_s": round(export),
        "baseline_records_per_s": round(baseline),
        "export_ratio": round(export / baseline, 3),
        "records": args.records,
        "baseline_records": base_rows,
        "released_records": released,
        "encrypted": not args.plain,
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
