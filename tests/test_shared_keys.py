"""Two processes of one region on a shared PostgreSQL record store and a shared PostgreSQL key store.

Each process has its own folder for everything else (config, blobs, restricted frames). They must agree on the
vehicle pseudonym, read each other's personal rows, and after an erasure in one of them neither can decrypt
any value of that subject, not even from rows copied before the erasure (a backup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import CN_VIN, fresh_pg_database, now_ms

MARK_A = "Zebra Quartet Nine"  # invented media titles: known plaintexts
MARK_B = "Yodel Orchestra Two"

# A long-lived process: it keeps its region open across the erasure another process runs, so a cached subject
# key would show here. "watch": copy the subject's rows (a backup), print them opened, wait, print them again.
# "open": open rows copied earlier, in a fresh process.
_SCRIPT = """
import json, sys
from pathlib import Path
from onshore.config import load_settings
from onshore.runtime import Runtime

runtime = Runtime(load_settings(Path(sys.argv[1])))
region = runtime.regions["cn"]
if sys.argv[2] == "watch":
    rows = region.subjects.records_of(sys.argv[3])
    Path(sys.argv[4]).write_text(json.dumps(rows, default=str))
    print(json.dumps([r["value"] for r in region.open_rows([dict(r) for r in rows])]), flush=True)
    sys.stdin.readline()
    print(json.dumps([r["value"] for r in region.open_rows([dict(r) for r in rows])]), flush=True)
else:
    print(json.dumps([r["value"] for r in region.open_rows(json.loads(Path(sys.argv[3]).read_text()))]))
runtime.close()
"""


def _node(folder: Path, record_store: str, key_store: str) -> Path:
    folder.mkdir(parents=True)
    config = folder / "node.toml"
    config.write_text(
        f"""
[rules]
packs = ["cn-auto"]

[regions.cn]
jurisdiction = "CN"
location = "cn-guizhou"
record_store = "{record_store}"
key_store = "{key_store}"
blob_store = "file://{folder}/blobs"
restricted_store = "file://{folder}/restricted"
""",
        encoding="utf-8",
    )
    return config


def _onshore(config: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSHORE_")}
    done = subprocess.run(
        [sys.executable, "-m", "onshore", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, f"onshore {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def _titles(access_file: Path) -> list[str]:
    bundle = json.loads(access_file.read_text())
    return sorted(r["value"] for r in bundle["regions"]["cn"]["records"] if r["signal"] == "MediaNowPlayingTitle")


def _ingest(config: Path, prefix: str, title: str) -> None:
    batch = config.parent / f"{prefix}.json"
    batch.write_text(
        json.dumps(
            [
                {
                    "msg_id": f"{prefix}{i}",
                    "ts": now_ms() - 1000,
                    "signal": "MediaNowPlayingTitle",
                    "value": f"{title} {i}",
                }
                for i in range(3)
            ]
        )
    )
    result = json.loads(_onshore(config, "ingest", str(batch), "--vin", CN_VIN, "--market", "CN", "--json"))
    assert result["accepted"] == 3, result


@pytest.mark.services
def test_two_processes_share_keys_and_an_erasure_in_one_shreds_for_both(tmp_path: Path) -> None:
    with fresh_pg_database() as records_url, fresh_pg_database() as keys_url:
        one = _node(tmp_path / "one", records_url, keys_url)
        two = _node(tmp_path / "two", records_url, keys_url)
        _onshore(one, "db", "upgrade")
        _onshore(one, "keys", "provision", "--region", "cn")

        # the same vehicle_ref for one VIN: process two re-registers (a token rotation) the vehicle one added
        ref_one = json.loads(_onshore(one, "vehicle", "add", "--vin", CN_VIN, "--market", "CN", "--json"))[
            "vehicle_ref"
        ]
        ref_two = json.loads(_onshore(two, "vehicle", "add", "--vin", CN_VIN, "--market", "CN", "--rotate", "--json"))
        assert ref_two["vehicle_ref"] == ref_one
        _onshore(one, "consent", "grant", "--vin", CN_VIN, "--market", "CN", "--purpose", "infotainment")
        subject = _onshore(two, "subject", "owner", "--vin", CN_VIN, "--market", "CN").strip()
        assert subject.startswith("sub_")

        # each ingests personal rows; each reads the other's decrypted
        _ingest(one, "a", MARK_A)
        _ingest(two, "b", MARK_B)
        expected = sorted([f"{MARK_A} {i}" for i in range(3)] + [f"{MARK_B} {i}" for i in range(3)])
        for node in (one, two):
            _onshore(node, "subject", "access", "--subject", subject, "--out", str(node.parent / "access.json"))
            assert _titles(node.parent / "access.json") == expected

        # process two stays open across the erasure, holding a copy of the subject's rows
        backup = tmp_path / "rows.json"
        script = tmp_path / "reader.py"
        script.write_text(_SCRIPT)
        with subprocess.Popen(
            [sys.executable, str(script), str(two), "watch", subject, str(backup)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        ) as watcher:
            try:
                assert watcher.stdout is not None and watcher.stdin is not None and watcher.stderr is not None
                before = json.loads(watcher.stdout.readline() or "null")
                assert before is not None, watcher.stderr.read()[-2000:]
                assert sorted(json.loads(v) for v in before) == expected
                stored = json.loads(backup.read_text())
                assert all(row["value"].startswith("e1:") and MARK_A not in row["value"] for row in stored)

                report = json.loads(_onshore(one, "subject", "erase", "--subject", subject, "--json"))
                assert report["regions"]["cn"]["key_destroyed"] is True

                watcher.stdin.write("go\n")
                watcher.stdin.flush()
                after = json.loads(watcher.stdout.readline())
                watcher.wait(timeout=60)
            finally:
                if watcher.poll() is None:
                    watcher.kill()
        assert after == [None] * len(stored)  # the long-lived process holds no cached key
        fresh = subprocess.run(
            [sys.executable, str(script), str(one), "open", str(backup)],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )
        assert fresh.returncode == 0, fresh.stderr[-2000:]
        assert json.loads(fresh.stdout) == [None] * len(stored)

        # the wrapped key row is gone from the key database; the record store never held one
        with psycopg.connect(keys_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            assert conn.execute("SELECT count(*) FROM subject_keys WHERE subject_ref = %s", (subject,)).fetchone() == (
                0,
            )
            assert conn.execute("SELECT count(*) FROM named_keys WHERE region = 'cn'").fetchone() == (4,)
            vacuumed = conn.execute("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'subject_keys'")
            assert vacuumed.fetchone()[0] is not None  # the dead tuple was vacuumed right after the DELETE
        with psycopg.connect(records_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            }
        assert "subject_keys" not in tables and "named_keys" not in tables
