"""Shared fixtures: a fresh workspace (real SQLite files), its runtime, an in-process API client."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from onshore.config import Settings, load_settings
from onshore.runtime import Runtime
from onshore.web.app import create_app
from onshore.workspace import IssuedApiToken, init_workspace

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Synthetic VINs (ISO 3779 alphabet, no real vehicle).
CN_VIN = "LSVM0TEST00000001"
CN_VIN_2 = "LSVM0TEST00000002"
EU_VIN = "WSVM0TEST00000001"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skipped when absent, except in CI where absence fails."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared test data missing in CI: {path}")
        pytest.skip(f"shared test data not present: {path}")
    return path


PG_ADMIN_URL = os.environ.get("ONSHORE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards; skipped when the server is
    unreachable, except in CI where that fails."""
    import psycopg

    name = f"onshore_test_{secrets.token_hex(4)}"
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Workspace:
    folder: Path
    config: Path
    settings: Settings
    runtime: Runtime
    tokens: dict[str, IssuedApiToken]

    def token(self, name: str) -> str:
        return self.tokens[name].token


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    config, issued = init_workspace(tmp_path)
    settings = load_settings(config, env={})
    runtime = Runtime(settings)
    try:
        yield Workspace(tmp_path, config, settings, runtime, {t.name: t for t in issued})
    finally:
        runtime.close()


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace.runtime)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record(msg_id: str, signal: str, value: object, ts: int | None = None) -> dict[str, object]:
    return {"msg_id": msg_id, "ts": now_ms() - 1000 if ts is None else ts, "signal": signal, "value": value}
