"""Fault injection with real parts (`onshore.sim.robustness.scenarios`): a real `onshore serve` under a stream of
records while its database connections are killed (PostgreSQL ``pg_terminate_backend``), its SQLite database is
locked past the busy timeout, its disk is full (``RLIMIT_FSIZE``), or it is SIGKILLed and restarted. Each
scenario must cost nothing it may not: every acknowledged record stored exactly once, no batch half-written, the
client answered 503 with ``Retry-After`` (never 500) while the fault lasted, `onshore ledger verify -c CONFIG`
exit 0 afterwards, and nothing personal in what the servers wrote.

The broker scenarios (`onshore.sim.robustness.broker_scenarios`: nats-server restarted under a gateway and a
worker, the worker SIGKILLed, Mosquitto restarted under `onshore mqtt`) start private brokers of their own
(``nats_server``, ``mosquitto``: the binary, skipped locally when it is missing, a failure in CI); the shared
brokers are never restarted.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from onshore.config import load_settings
from onshore.errors import StorageError
from onshore.runtime import Runtime
from onshore.sim.robustness.brokers import BROKERS, find_broker
from onshore.sim.robustness.faults import make_deployment
from onshore.sim.robustness.scenarios import SCENARIOS, FaultContext, run_scenario
from tests.conftest import fresh_pg_database

BUILT_IN = {
    "server_sigkill", "postgres_connections_killed", "sqlite_locked", "disk_full", "nats_broker_restart",
    "worker_sigkill", "mosquitto_restart",
}  # fmt: skip


def _services(needs: tuple[str, ...]) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for need in needs:
        if need == "postgresql":
            services["postgresql"] = fresh_pg_database
        elif need in BROKERS and (binary := find_broker(need)) is not None:
            services[need] = binary  # a private broker of the scenario's own: the shared ones are never touched
        elif os.environ.get("CI") == "true":
            pytest.fail(f"the fault scenario needs {need!r}, which this test does not offer yet")
        else:
            pytest.skip(f"the fault scenario needs {need!r}")
    return services


def test_the_built_in_fault_scenarios_are_registered() -> None:
    assert set(SCENARIOS) >= BUILT_IN


def _marks(name: str) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.services] if SCENARIOS[name].needs else []
    return marks


SCENARIO_PARAMS = [pytest.param(n, marks=_marks(n)) for n in sorted(SCENARIOS)]


@pytest.mark.parametrize("name", SCENARIO_PARAMS)
def test_a_fault_loses_nothing_acknowledged_and_clients_see_503_with_retry_after(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    with contextlib.ExitStack() as stack:
        services = _services(scenario.needs)
        if "postgresql" in services:  # skip here, before the scenario starts, when PostgreSQL is unreachable
            url = stack.enter_context(fresh_pg_database())
            services["postgresql"] = lambda: contextlib.nullcontext(url)
        outcome = run_scenario(scenario, FaultContext(tmp_path, services))
    assert outcome.ok, (outcome.to_dict(), outcome.notes, outcome.log_leaks)
    if scenario.refuses:  # a killed server answers nothing, a killed worker is behind the seam; the rest say 503
        assert outcome.unavailable > 0, outcome.to_dict()


@pytest.mark.services
def test_a_read_whose_connection_dies_before_it_closes_is_a_503_not_a_500(tmp_path: Path) -> None:
    """Closing a read rolls it back; on a connection PostgreSQL just terminated, that failed outside the store's
    error translation and answered 500 (found by `postgres_connections_killed`)."""
    import psycopg

    with fresh_pg_database() as url:
        deployment = make_deployment(tmp_path, vehicles=1, record_store=url)
        runtime = Runtime(load_settings(deployment.config, env={}))
        try:
            store = runtime.regions["cn"].store
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            with pytest.raises(StorageError) as refused, store.read("a read") as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                with psycopg.connect(dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert refused.value.status == 503 and refused.value.retry_after_s
            assert store.count_records() == 0  # the pool recovers: the next read gets a live connection
        finally:
            runtime.close()
