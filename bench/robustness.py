"""Robustness benchmark: the route x role matrix, fuzzing of every decoder and route, fault injection with real
parts, and a bounded soak of a real server, in one run (the parts are `onshore.sim.robustness`, as the tests run
them, with more examples and a longer soak).

    python bench/robustness.py --json
    python bench/robustness.py --soak-seconds 600 --soak-fraction 0.5 --fuzz-examples 5000 --json

Prints one JSON line:
  routes_roles_checked   (route, kind of token) pairs sent by the matrix; route_role_failures: those answered wrong
  fuzz_cases             inputs fuzzed: decoders (--fuzz-examples each) and routes (--route-examples each)
  fuzz_failures          decoders and routes whose property failed (names); each one is a defect
  faults_injected        connections killed, locks held, disks filled, servers and workers SIGKILLed, private
                         nats-server and Mosquitto brokers restarted
  fault_scenarios        per scenario: ok, acknowledged records, 503 answers seen
  lost                   acknowledged records not stored (faults and soak): 0
  duplicates             records stored twice (faults and soak): 0
  server_errors          5xx answers other than a 503 with Retry-After (matrix, fuzzing, faults, soak): 0
  log_leaks              VINs, tokens or positions found in anything the servers wrote: 0
  soak_*                 the soak: capacity measured first (closed loop), the rate driven (--soak-fraction of it),
                         its length, errors (any non-200), and
  rss_growth_ratio       median server RSS in the last fifth of the soak / in the first fifth (after a warm-up)
  latency_growth_ratio   the larger of p50(last fifth) / p50(first fifth) and the same for p99
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from onshore.sim.robustness.brokers import BROKERS, find_broker
from onshore.sim.robustness.decoders import DECODERS, run_decoder
from onshore.sim.robustness.faults import make_deployment
from onshore.sim.robustness.matrix import check_matrix, open_world
from onshore.sim.robustness.routes import RouteFuzzStats, fuzz_route, route_operations, seed
from onshore.sim.robustness.scenarios import SCENARIOS, FaultContext, run_scenario
from onshore.sim.robustness.soak import measure_capacity, soak


def run_fuzzing(folder: Path, decoder_examples: int, route_examples: int, result: dict[str, Any]) -> None:
    failures: list[str] = []
    cases = server_errors = 0
    for target in DECODERS.values():
        outcome = run_decoder(target, decoder_examples)
        cases += outcome.cases
        if outcome.failure is not None:
            failures.append(f"{outcome.name}: {outcome.failure[:300]}")
    with open_world(folder / "matrix") as world:
        checked, wrong = check_matrix(world)
        result["routes_roles_checked"] = checked
        result["route_role_failures"] = len(wrong)
        server_errors += sum("(a server error)" in line for line in wrong)
        seed(world)
        for op in route_operations(world):
            stats = RouteFuzzStats()
            outcome = fuzz_route(world, op, route_examples, stats=stats)
            cases += outcome.cases
            server_errors += sum(n for status, n in stats.statuses.items() if status >= 500)
            if outcome.failure is not None:
                failures.append(f"{outcome.name}: {outcome.failure[:300]}")
    result["fuzz_cases"] = cases
    result["fuzz_failures"] = failures
    result["server_errors"] += server_errors


def run_faults(folder: Path, pg_admin_url: str | None, result: dict[str, Any]) -> None:
    services: dict[str, Any] = {name: binary for name in BROKERS if (binary := find_broker(name)) is not None}
    if pg_admin_url is not None:
        from ingest import throwaway_pg_database  # bench/ingest.py

        services["postgresql"] = functools.partial(throwaway_pg_database, pg_admin_url)
    scenarios: dict[str, Any] = {}
    for name, scenario in SCENARIOS.items():
        if not set(scenario.needs) <= set(services):
            scenarios[name] = {"skipped": f"needs {', '.join(scenario.needs)}"}
            continue
        outcome = run_scenario(scenario, FaultContext(folder / name, services))
        scenarios[name] = {"ok": outcome.ok, "acknowledged": outcome.acknowledged, "unavailable": outcome.unavailable}
        if not outcome.ok:
            scenarios[name]["notes"] = outcome.notes[:3]
        result["faults_injected"] += outcome.faults_injected
        result["lost"] += outcome.lost
        result["duplicates"] += outcome.duplicates + outcome.half_written
        result["server_errors"] += outcome.server_errors
        result["log_leaks"] += len(outcome.log_leaks)
    result["fault_scenarios"] = scenarios


def run_soak(folder: Path, seconds: float, fraction: float, result: dict[str, Any]) -> None:
    deployment = make_deployment(folder / "soak", vehicles=8)
    deployment.start()
    try:
        capacity = measure_capacity(deployment)
        report = soak(deployment, rate_records_per_s=capacity * fraction, duration_s=seconds)
    finally:
        deployment.stop()
    result["soak_capacity_records_per_s"] = round(capacity)
    result["soak_rate_records_per_s"] = round(report.rate_records_per_s)
    result["soak_seconds"] = round(report.duration_s, 1)
    result["soak_requests"] = report.requests
    result["soak_errors"] = report.errors
    result["soak_behind_schedule_s"] = round(report.behind_schedule_s, 3)
    result["soak_rss_mb"] = [round(report.rss_start_mb, 1), round(report.rss_end_mb, 1)]
    result["soak_p50_ms"] = [round(report.p50_start_ms, 1), round(report.p50_end_ms, 1)]
    result["soak_p99_ms"] = [round(report.p99_start_ms, 1), round(report.p99_end_ms, 1)]
    result["rss_growth_ratio"] = round(report.rss_growth_ratio, 3)
    result["latency_growth_ratio"] = round(report.latency_growth_ratio, 3)
    result["lost"] += report.lost
    result["duplicates"] += report.duplicates
    result["server_errors"] += report.server_errors
    result["log_leaks"] += report.log_leaks


@contextlib.contextmanager
def _timed(result: dict[str, Any], key: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.setdefault("seconds", {})[key] = round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz-examples", type=int, default=2000, help="inputs per decoder")
    parser.add_argument("--route-examples", type=int, default=200, help="requests per route operation")
    parser.add_argument("--soak-seconds", type=float, default=300, help="length of the soak")
    parser.add_argument("--soak-fraction", type=float, default=0.5, help="share of the measured capacity to drive")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true", help="leave out the PostgreSQL fault scenario")
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where throw-away databases may be created",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "routes_roles_checked": 0, "route_role_failures": 0, "fuzz_cases": 0, "fuzz_failures": [],
        "faults_injected": 0, "lost": 0, "duplicates": 0, "server_errors": 0, "log_leaks": 0,
        "rss_growth_ratio": None, "latency_growth_ratio": None,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="onshore-robustness-") as tmp:
        folder = Path(tmp)
        if not args.skip_fuzz:
            with _timed(result, "fuzz"):
                run_fuzzing(folder, args.fuzz_examples, args.route_examples, result)
        if not args.skip_faults:
            with _timed(result, "faults"):
                run_faults(folder / "faults", None if args.skip_postgres else args.pg_admin_url, result)
        if not args.skip_soak:
            with _timed(result, "soak"):
                run_soak(folder, args.soak_seconds, args.soak_fraction, result)
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    clean = not (result["lost"] or result["duplicates"] or result["server_errors"] or result["log_leaks"])
    sys.exit(0 if clean and not result["fuzz_failures"] and not result["route_role_failures"] else 1)


if __name__ == "__main__":
    main()
