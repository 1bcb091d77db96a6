"""Schema versions of the record store, on SQLite and the real PostgreSQL server.

The head of the migrations is the metadata; revision 0001 is the schema onshore shipped before migrations; a store
at 0001 holding data upgrades through `onshore db upgrade` with every row intact; the runtime and the commands
refuse a store that is not at head, naming the command to run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.errors import SchemaVersionError
from onshore.ledger.store import MerkleLog
from onshore.model import RECORD_COLUMNS
from onshore.runtime import Runtime
from onshore.storage.migrate import head_revision, revisions, schema_diff, schema_state, upgrade
from onshore.storage.predicates import RecordFilter
from onshore.storage.schema import REVISION
from onshore.storage.sql import make_engine
from onshore.tables import full_metadata
from onshore.workspace import init_workspace
from tests.conftest import fresh_pg_database

runner = CliRunner()
DATA = Path(__file__).parent / "data"
TOKEN = "onv_cn_synthetic-migration-test-token"  # a vehicle token of the 0001-era store (synthetic)
N_RECORDS = 120
T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Deployment:
    """A config whose cn record store is a SQLite file or a fresh PostgreSQL database (eu stays SQLite)."""

    config: Path
    env: dict[str, str]

    def settings(self):  # type: ignore[no-untyped-def]
        return load_settings(self.config, env=self.env)

    def cn_engine(self) -> Engine:
        s = self.settings()
        return make_engine(s.regions["cn"].record_store, base_dir=s.base_dir)

    def cli(self, *args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [*args], env=self.env)


@pytest.fixture
def deployment(backend: str, tmp_path: Path) -> Iterator[Deployment]:
    config, _ = init_workspace(tmp_path)
    if backend == "sqlite":
        yield Deployment(config, {})
        return
    with fresh_pg_database() as url:
        yield Deployment(config, {"ONSHORE_REGIONS__CN__RECORD_STORE": url})


def _fill_0001(engine: Engine) -> bytes:
    """Rows in the 0001 shape, written as an onshore of that era did: a vehicle, records, their ledger events.

    Returns the ledger root after the appends.
    """
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO vehicles (ref, market, token_sha256, created_ms) VALUES ('vref-0001', 'CN', :sha, :t)"),
            {"sha": hashlib.sha256(TOKEN.encode()).hexdigest(), "t": T0},
        )
        conn.execute(
            text(
                "INSERT INTO records (vehicle_ref, msg_id, ts_ms, signal, value, categories, tags, purpose, rule_id,"
                " origin, zone, received_ms, subject_ref) VALUES (:v, :m, :ts, :sig, :val, :cat, :tags, 'service',"
                " 'cn.sig.speed', 'CN', NULL, :rx, 'subj-0001')"
            ),
            [
                {
                    "v": "vref-0001",
                    "m": f"m{i:04d}",
                    "ts": T0 + i * 1000,
                    "sig": "VehicleSpeed" if i % 2 else "OdometerKm",
                    "val": str(i),
                    "cat": "general" if i % 3 else "personal,sensitive_personal",
                    "tags": ("", "location", "location,trajectory", "location_history")[i % 4],
                    "rx": T0 + i * 1000 + 5,
                }
                for i in range(N_RECORDS)
            ],
        )
        log = MerkleLog("cn")
        events = [orjson.dumps({"kind": "store", "region": "cn", "batch": b, "stored": 10}) for b in range(12)]
        return log.append_batch(conn, events).root


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    tables = {
        "records": "id",
        "vehicles": "ref",
        "ledger_entries": "idx",
        "ledger_leaves": "idx",
        "ledger_nodes": "level, idx",
    }
    # the columns 0001 had: later revisions may add columns (records.store_idx in 0003, vehicles.gateway in 0008)
    # but keep these intact
    columns_0001 = {
        "records": "id, " + ", ".join(RECORD_COLUMNS),
        "vehicles": "ref, market, token_sha256, created_ms, revoked_ms",
    }
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT {columns_0001.get(t, '*')} FROM {t} ORDER BY {o}"))]
            for t, o in tables.items()
        }


def _indexes(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {ix["name"] for ix in inspect(conn).get_indexes(table) if ix["name"]}


@contextlib.contextmanager
def _empty_store_url(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'records.sqlite'}"
    else:
        with fresh_pg_database() as url:
            yield url


def test_the_migrations_head_equals_the_metadata(backend: str, tmp_path: Path) -> None:
    with _empty_store_url(backend, tmp_path) as url:
        engine = make_engine(url, base_dir=tmp_path)
        try:
            assert upgrade(engine, region="t") == (None, head_revision())
            assert schema_diff(engine, full_metadata()) == []
            # the comparison can fail: what the metadata declares and the store lacks is a difference
            with engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_records_category_ts"))
            assert [d[0] for d in schema_diff(engine, full_metadata())] == ["add_index"]
        finally:
            engine.dispose()


def test_revision_0001_is_the_schema_shipped_before_migrations(tmp_path: Path) -> None:
    """sqlite_master of a store at 0001 is what onshore a5939de's create_all made, table by table and index by index."""
    db = tmp_path / "r.sqlite"
    engine = make_engine(f"sqlite:///{db}", base_dir=tmp_path)
    upgrade(engine, region="t", target="0001")
    engine.dispose()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE tbl_name != 'alembic_version' ORDER BY type, name"
        ).fetchall()
    got = ["|".join((t, n, tb, " ".join((sql or "").split()))) for t, n, tb, sql in rows]
    expected = [line for line in (DATA / "schema_a5939de.sqlite.txt").read_text().splitlines() if line[:1] != "#"]
    assert got == expected


def test_a_store_at_0001_upgrades_through_the_cli_with_its_data_intact(deployment: Deployment) -> None:
    engine = deployment.cn_engine()
    try:
        head = head_revision()
        assert revisions()[:2] == ["0001", "0002"] and revisions()[-1] == head
        upgrade(engine, region="cn", target="0001")
        root = _fill_0001(engine)
        before = _snapshot(engine)
        assert "ix_records_ts_ms" not in _indexes(engine, "records")

        refused = deployment.cli("residency", "check", "-c", str(deployment.config))
        assert refused.exit_code == 2, refused.output
        assert f"region cn: record store is at revision 0001, this onshore needs {head}" in refused.output
        assert f"onshore db upgrade -c {deployment.config.resolve()}" in refused.output

        status = deployment.cli("db", "status", "-c", str(deployment.config), "--json")
        assert status.exit_code == 1
        assert json.loads(status.stdout)["regions"]["cn"] == {"revision": "0001", "status": "behind"}

        upgraded = deployment.cli("db", "upgrade", "-c", str(deployment.config), "--json")
        assert upgraded.exit_code == 0, upgraded.output
        assert json.loads(upgraded.stdout)["regions"] == {
            "cn": {"before": "0001", "after": head},
            "eu": {"before": None, "after": head},  # eu was never created: upgrade creates it at head
        }
        again = deployment.cli("db", "upgrade", "-c", str(deployment.config))
        assert again.exit_code == 0 and f"already at revision {head}" in again.output  # idempotent

        assert _snapshot(engine) == before
        # 0002 made it, 0005 dropped it again: (category_bits, ts_ms) serves time ranges
        assert "ix_records_ts_ms" not in _indexes(engine, "records")
        assert "ix_records_category_ts" in _indexes(engine, "records")
        assert schema_diff(engine, full_metadata()) == []
        assert deployment.cli("db", "status", "-c", str(deployment.config)).exit_code == 0
    finally:
        engine.dispose()

    runtime = Runtime(deployment.settings())  # no create: the store is at head now
    try:
        assert runtime.vehicles.authenticate(TOKEN).ref == "vref-0001"
        store = runtime.regions["cn"].store
        assert store.count_records() == N_RECORDS
        window = store.query_records(since_ms=T0 + 10_000, until_ms=T0 + 20_000, limit=1000)
        assert [r["msg_id"] for r in window] == [f"m{i:04d}" for i in range(10, 20)]
        # 0004 filled the index columns of the rows already stored: their categories and tags filter as new ones do
        sensitive = store.query_records(category="sensitive_personal", limit=1000)
        assert [r["msg_id"] for r in sensitive] == [f"m{i:04d}" for i in range(N_RECORDS) if i % 3 == 0]
        assert store.count_records(RecordFilter(categories=("general",))) == N_RECORDS - len(sensitive)
        located = [i for i in range(N_RECORDS) if i % 4 in (1, 2)]  # whole tags: location_history is not location
        assert store.count_records(RecordFilter(tags=("location",))) == len(located)
        assert store.count_records(RecordFilter(tags=("trajectory",), categories=("sensitive_personal",))) == len(
            [i for i in range(N_RECORDS) if i % 4 == 2 or i % 3 == 0]
        )
        signed = runtime.ledger.checkpoint("cn")  # signs over the migrated tree (ledger_signing_keys from 0001)
        assert (signed.tree_size, signed.root_hash) == (12, root)
    finally:
        runtime.close()


def test_a_store_made_before_migrations_is_adopted_by_db_upgrade(deployment: Deployment) -> None:
    """A store of an onshore without migrations: 0001's tables (ledger_signing_keys made lazily, maybe absent), no
    alembic_version. The runtime refuses it; `onshore db upgrade` adopts it, data intact."""
    engine = deployment.cn_engine()
    try:
        upgrade(engine, region="cn", target="0001")
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(text("DROP TABLE ledger_signing_keys"))
        _fill_0001(engine)
        before = _snapshot(engine)
        assert schema_state(engine).status == "unversioned"
        with pytest.raises(SchemaVersionError, match=r"has tables but no schema revision.*run `onshore db upgrade"):
            Runtime(deployment.settings())
        assert deployment.cli("db", "upgrade", "-c", str(deployment.config)).exit_code == 0
        assert schema_state(engine).status == "current"
        assert _snapshot(engine) == before
        assert schema_diff(engine, full_metadata()) == []
    finally:
        engine.dispose()


def test_an_empty_store_is_refused_and_init_creates_at_head(tmp_path: Path) -> None:
    config, _ = init_workspace(tmp_path / "a")  # the config only: no store yet
    with pytest.raises(SchemaVersionError, match=r"region cn: record store is empty.*run `onshore db upgrade -c "):
        Runtime(load_settings(config, env={}))
    made = runner.invoke(app, ["init", str(tmp_path / "b"), "--json"])
    assert made.exit_code == 0, made.output
    status = runner.invoke(app, ["db", "status", "-c", json.loads(made.stdout)["config"], "--json"])
    assert status.exit_code == 0
    assert json.loads(status.stdout) == {
        "head": head_revision(),
        "ok": True,
        "regions": {
            "cn": {"revision": head_revision(), "status": "current"},
            "eu": {"revision": head_revision(), "status": "current"},
        },
    }


def test_a_store_upgraded_by_a_newer_onshore_is_refused_and_not_downgraded(tmp_path: Path) -> None:
    made = runner.invoke(app, ["init", str(tmp_path), "--json"])
    config = json.loads(made.stdout)["config"]
    settings = load_settings(Path(config), env={})
    engine = make_engine(settings.regions["eu"].record_store, base_dir=settings.base_dir)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    finally:
        engine.dispose()
    for args in (["vehicle", "revoke", "--vin", "WSVM0TEST00000001", "--market", "EU"], ["db", "upgrade"]):
        result = runner.invoke(app, [*args, "-c", config])
        assert result.exit_code == 2, result.output
        assert "region eu: record store is at revision 0999, unknown to this onshore" in result.output
        assert "onshore db upgrade" not in result.output


def test_the_schema_declares_the_migrations_head() -> None:
    """The runtime opens a store at ``schema.REVISION`` without Alembic: a new migration must move it."""
    assert head_revision() == REVISION


def test_opening_a_current_store_loads_no_alembic(tmp_path: Path) -> None:
    made = runner.invoke(app, ["init", str(tmp_path), "--json"])
    config = Path(json.loads(made.stdout)["config"])
    probe = (
        "import sys, pathlib; from onshore.config import load_settings; from onshore.runtime import Runtime;"
        f"Runtime(load_settings(pathlib.Path({str(config)!r}), env={{}})).close();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_serve_refuses_a_store_behind_head(tmp_path: Path) -> None:
    """The real `onshore serve` process exits 2 before listening, naming `onshore db upgrade -c CONFIG`."""
    made = runner.invoke(app, ["init", str(tmp_path), "--json"])
    config = Path(json.loads(made.stdout)["config"])
    settings = load_settings(config, env={})
    engine = make_engine(settings.regions["cn"].record_store, base_dir=settings.base_dir)
    try:
        with engine.begin() as conn:  # back to 0001 as an older onshore left it
            conn.execute(text("DROP INDEX ix_records_category_ts"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    finally:
        engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSHORE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "onshore", "serve", "-c", str(config), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"run `onshore db upgrade -c {config.resolve()}`" in " ".join(proc.stderr.split())


def test_a_postgresql_store_at_0005_is_partitioned_by_month_with_every_row_intact(tmp_path: Path) -> None:
    """0006 rebuilds records as a table partitioned by month: the same rows, ids and bytes, a partition per month
    the rows fall in, every key in record_keys, ids going on after the old ones; downgrading gives the old table."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    from onshore.storage.migrate import alembic_config
    from onshore.storage.partitions import Month, present_months
    from tests.storage.test_partitions import open_store, store_events, stored_rows

    months = [Month(2023, 12), Month(2024, 1), Month(2024, 2), Month(2025, 6)]
    with fresh_pg_database() as url:
        engine = make_engine(url, base_dir=tmp_path)
        try:
            upgrade(engine, region="cn", target="0005")
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO records (vehicle_ref, msg_id, ts_ms, signal, value, categories, tags, purpose,"
                        " rule_id, origin, zone, received_ms, subject_ref, store_idx, category_bits, tag_set) VALUES"
                        " (:v, :m, :ts, 'VehicleSpeed', :val, :cat, :tags, 'service', 'cn.sig.speed', 'CN', :zone,"
                        " :ts, 'subj-0005', :idx, :bits, CAST(:tag_set AS TEXT[]))"
                    ),
                    [
                        {
                            "v": f"vref-{i % 3}",
                            "m": f"m{i:04d}",
                            # the first and the last millisecond of each month, and between
                            "ts": (months[i % 4].start_ms, months[i % 4].end_ms - 1, months[i % 4].start_ms + i)[i % 3],
                            "val": None if i % 7 == 0 else f"v{i}\u00e9\u4e2d'\\"[: 4 + i % 4],
                            "cat": "general" if i % 2 else "personal,sensitive_personal",
                            "tags": "location,trajectory" if i % 5 == 0 else "",
                            "zone": "zone-1" if i % 11 == 0 else None,
                            "idx": None if i % 13 == 0 else i // 10,
                            "bits": 8 if i % 2 else 3,
                            "tag_set": ["location", "trajectory"] if i % 5 == 0 else [],
                        }
                        for i in range(N_RECORDS)
                    ],
                )
                conn.execute(text("DELETE FROM records WHERE msg_id = 'm0005'"))  # a gap in the ids
            snapshot = "SELECT * FROM records ORDER BY id"
            with engine.connect() as conn:
                before = [tuple(r) for r in conn.execute(text(snapshot))]
                last_id = conn.execute(text("SELECT max(id) FROM records")).scalar()
            assert len(before) == N_RECORDS - 1
            # what Alembic cannot see, the comparison with the metadata still does
            unpartitioned = schema_diff(engine, full_metadata())
            assert ("partitioning", "records", "PARTITION BY RANGE (ts_ms)", "PARTITION BY None") in unpartitioned
            assert ("partitioning", "records", "PRIMARY KEY (id, ts_ms)", "(id)") in unpartitioned

            assert upgrade(engine, region="cn") == ("0005", head_revision())
            with engine.connect() as conn:
                after = [tuple(r) for r in conn.execute(text(snapshot))]
                # every row as it was; the columns later revisions add (records.batch_ref in 0010) come after, empty
                assert [r[: len(before[0])] for r in after] == before
                assert {r[len(before[0]) :] for r in after} == {(None,)}
                assert conn.execute(text("SELECT pg_get_partkeydef('records'::regclass)")).scalar() == "RANGE (ts_ms)"
                assert present_months(conn) == set(months)
                placed = conn.execute(text("SELECT ts_ms, tableoid::regclass::text FROM records")).all()
                assert all(Month.of(ts).name == table for ts, table in placed)
                keys = conn.execute(text("SELECT vehicle_ref, msg_id, ts_ms FROM record_keys ORDER BY msg_id")).all()
                assert [tuple(k) for k in keys] == sorted(((r[1], r[2], r[3]) for r in before), key=lambda k: k[1])
                assert (
                    conn.execute(
                        text("SELECT count(*) FROM pg_tables WHERE tablename = 'records_unpartitioned'")
                    ).scalar()
                    == 0
                )
            assert schema_diff(engine, full_metadata()) == []

            store = open_store(url, migrate=False)
            try:
                # an old message again, at another time: a duplicate; a new one gets an id after the old ones
                resent = store.commit_batch(
                    stored_rows([("m0001", Month(2024, 9).start_ms), ("new", Month(2024, 9).start_ms)], "vref-1"),
                    store_events("cn"),
                )
                assert (resent.accepted, resent.duplicate) == (1, 1)
                [new] = store.query_records(after_id=last_id)  # (a rolled-back attempt may have used an id)
                assert new["msg_id"] == "new" and new["id"] > last_id
            finally:
                store.dispose()

            with engine.begin() as conn:
                command.downgrade(alembic_config(conn), "0005")
                assert MigrationContext.configure(conn).get_current_revision() == "0005"
            with engine.connect() as conn:
                after = [tuple(r) for r in conn.execute(text(snapshot))]
                assert after[:-1] == before and after[-1][2] == "new"
                assert conn.execute(text("SELECT pg_get_partkeydef('records'::regclass)")).scalar() is None
                assert conn.execute(text("SELECT to_regclass('record_keys')")).scalar() is None
                assert "uq_records_vehicle_msg" in {c["name"] for c in inspect(conn).get_unique_constraints("records")}
        finally:
            engine.dispose()
