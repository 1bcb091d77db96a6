"""Fault scenarios with real parts: each breaks something under a stream of records and settles the cost.

`SCENARIOS` maps a name to a `FaultScenario`: what it needs (``postgresql``, later ``nats``) and a function
``run(context) -> FaultOutcome``. The built-in ones:

* ``server_sigkill``: SIGKILL of `onshore serve` mid-stream, twice, each time restarted on the same workspace.
* ``postgres_connections_killed``: the cn region on PostgreSQL; ``pg_terminate_backend`` on every connection
  of the server, five times during the stream (the database unavailable mid-batch).
* ``sqlite_locked``: another process holds the SQLite write lock for longer than the store's busy timeout.
* ``disk_full``: the server runs under ``RLIMIT_FSIZE`` a little above its files' sizes, so its database
  cannot grow (what a full disk does to SQLite: ``SQLITE_FULL``); then restarted with room again. A tmpfs of a
  few MB (in a user namespace, ``unshare -rm``) would be a real ENOSPC, but its data goes with the namespace and
  nothing could be checked afterwards; the file-size limit needs no privilege and leaves the files in place.

Every scenario ends in `onshore.sim.robustness.faults.settle`: every acknowledged record stored exactly once,
nothing half-written, a client that saw 503 with ``Retry-After`` and never another 5xx, `onshore ledger verify`
exit 0, nothing personal in the servers' output.

The broker scenarios (`onshore.sim.robustness.broker_scenarios`: ``nats_broker_restart``, ``worker_sigkill``,
``mosquitto_restart``) are registered here too; they need ``nats_server`` or ``mosquitto`` (the binary: each
starts a private broker). A scenario is one function and one `register_scenario` call. `FaultContext` gives the
folder and the real services a scenario needs (a fresh PostgreSQL database, a broker binary); a scenario whose
service is missing is skipped (a failure in CI) by the test, reported by the bench.
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onshore.sim.robustness.faults import (
    FaultOutcome,
    PgDatabase,
    make_deployment,
    serving,
    settle,
    streaming,
    wait_for,
)


@dataclass
class FaultContext:
    """Where a scenario runs: a folder of its own, and the real services it may use."""

    folder: Path
    # "postgresql": a PgDatabase factory; "nats_server", "mosquitto": the broker's binary
    services: dict[str, Any] = field(default_factory=dict)

    def pg_database(self) -> contextlib.AbstractContextManager[str]:
        factory: PgDatabase = self.services["postgresql"]
        return factory()


@dataclass(frozen=True)
class FaultScenario:
    name: str
    run: Callable[[FaultContext], FaultOutcome]
    needs: tuple[str, ...] = ()  # services the context must offer
    refuses: bool = True  # clients are answered 503 with Retry-After while the fault lasts (not when only a
    # process behind the seam, a worker, is killed, nor when the server itself is gone)


SCENARIOS: dict[str, FaultScenario] = {}


def register_scenario(scenario: FaultScenario) -> FaultScenario:
    """Add ``scenario`` to `SCENARIOS` (a name may be registered once)."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"fault scenario {scenario.name!r} is already registered")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _more_acknowledged(streams: list[Any], batches: int, timeout_s: float = 60) -> bool:
    """Wait until the streams have ``batches`` more batches acknowledged (or ``timeout_s`` passes)."""
    target = sum(s.acknowledged_batches() for s in streams) + batches
    return wait_for(lambda: sum(s.acknowledged_batches() for s in streams) >= target, timeout_s)


def server_sigkill(ctx: FaultContext) -> FaultOutcome:
    outcome = FaultOutcome("server_sigkill")
    with serving(make_deployment(ctx.folder / "workspace")) as deployment, streaming(deployment) as streams:
        for _kill in range(2):
            _more_acknowledged(streams, 4)
            deployment.kill()
            outcome.faults_injected += 1
            time.sleep(0.3)  # clients find the port closed
            deployment.start()
        _more_acknowledged(streams, 4)
        replayed = streams[0].replay_first()  # at least once: a resend after the restart stores nothing twice
        if replayed is not None:
            outcome.server_errors += 1
            outcome.notes.append(replayed)
        return settle(deployment, streams, outcome)


def postgres_connections_killed(ctx: FaultContext) -> FaultOutcome:
    import psycopg

    outcome = FaultOutcome("postgres_connections_killed")
    with ctx.pg_database() as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        database = dsn.rsplit("/", 1)[1]
        deployment = make_deployment(ctx.folder / "workspace", record_store=url)
        with serving(deployment), streaming(deployment) as streams:
            _more_acknowledged(streams, 4)
            with psycopg.connect(dsn, autocommit=True) as admin:
                for _round in range(5):
                    killed = admin.execute(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    ).fetchone()
                    outcome.faults_injected += int(killed[0] if killed else 0)
                    time.sleep(0.4)
            _more_acknowledged(streams, 4)
            return settle(deployment, streams, outcome)


def sqlite_locked(ctx: FaultContext) -> FaultOutcome:
    outcome = FaultOutcome("sqlite_locked")
    deployment = make_deployment(ctx.folder / "workspace")
    database = deployment.folder / "onshore-data" / "cn" / "records.sqlite"
    with serving(deployment), streaming(deployment) as streams:
        _more_acknowledged(streams, 4)
        with _write_lock_held(database, seconds=11.5):  # past the store's busy timeout (10 s)
            outcome.faults_injected += 1
        _more_acknowledged(streams, 4)
        return settle(deployment, streams, outcome)


@contextlib.contextmanager
def _write_lock_held(database: Path, seconds: float) -> Iterator[None]:
    """Hold SQLite's write lock on ``database`` (another connection, ``BEGIN IMMEDIATE``) for ``seconds``."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        time.sleep(seconds)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def disk_full(ctx: FaultContext) -> FaultOutcome:
    outcome = FaultOutcome("disk_full")
    deployment = make_deployment(ctx.folder / "workspace")
    # started once with room: the schema, keys and first batches are written
    with serving(deployment), streaming(deployment) as streams:
        _more_acknowledged(streams, 2)
        deployment.stop()
        limit = _largest_file(deployment.folder / "onshore-data") + 256 * 1024
        deployment.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        outcome.faults_injected += 1
        full = wait_for(lambda: sum(s.counts.unavailable for s in streams) >= 3, 90)
        if not full:
            outcome.notes.append("the file-size limit was never reached: no 503 while the disk was full")
            outcome.faults_injected = 0
        deployment.stop()  # room again: a restart without the limit
        deployment.start()
        _more_acknowledged(streams, 4)
        return settle(deployment, streams, outcome)


def _largest_file(folder: Path) -> int:
    return max((p.stat().st_size for p in folder.rglob("*") if p.is_file()), default=0)


def run_scenario(scenario: FaultScenario, ctx: FaultContext) -> FaultOutcome:
    """Run ``scenario``; a crash of the scenario itself is an outcome that is not ok, with its reason."""
    try:
        return scenario.run(ctx)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the bench runs every scenario
        return FaultOutcome(scenario.name, notes=[f"the scenario failed: {type(exc).__name__}: {exc}"[:1000]])


def _register_builtins() -> None:
    from onshore.sim.robustness import broker_scenarios as brokers

    register_scenario(FaultScenario("server_sigkill", server_sigkill, refuses=False))
    register_scenario(FaultScenario("postgres_connections_killed", postgres_connections_killed, ("postgresql",)))
    register_scenario(FaultScenario("sqlite_locked", sqlite_locked))
    register_scenario(FaultScenario("disk_full", disk_full))
    register_scenario(FaultScenario("nats_broker_restart", brokers.nats_broker_restart, ("nats_server",)))
    register_scenario(FaultScenario("worker_sigkill", brokers.worker_sigkill, ("nats_server",), refuses=False))
    register_scenario(FaultScenario("mosquitto_restart", brokers.mosquitto_restart, ("mosquitto",), refuses=False))


_register_builtins()
