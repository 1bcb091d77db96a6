"""Two real `onshore serve` processes writing one PostgreSQL region at once: no 409, nothing lost or doubled, and
the region's ledger still verifies (the region write lock serialises them; the store retries what still collides)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, tuple_

from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.storage.schema import records
from onshore.web.server import free_port
from onshore.workspace import init_workspace
from tests.conftest import fresh_pg_database, now_ms
from tests.servers import start_server

pytestmark = pytest.mark.services

CLIENTS = 8
BATCHES = 40
RECORDS = 200
VINS = [f"LSVM0TEST{n:08d}" for n in range(11, 11 + CLIENTS)]  # synthetic, one vehicle per client


class Region:
    """A workspace whose cn region lives in a fresh PostgreSQL database, with 8 vehicles registered."""

    def __init__(self, folder: Path, url: str) -> None:
        self.config, issued = init_workspace(folder)
        text = self.config.read_text()
        sqlite_cn = 'record_store = "sqlite:///onshore-data/cn/records.sqlite"'
        assert sqlite_cn in text
        self.config.write_text(text.replace(sqlite_cn, f'record_store = "{url}"'))
        self.url = url
        self.auditor = next(t.token for t in issued if t.name == "auditor")
        runtime = Runtime(load_settings(self.config, env={}), create=True)  # the schema at head, before any server
        try:
            self.tokens = [runtime.vehicles.add(vin, "CN").token for vin in VINS]
            self.vkey = runtime.ledger.public_keys("cn")[-1].vkey  # the log's signing key, made before the servers
        finally:
            runtime.close()


@pytest.fixture
def region(tmp_path: Path) -> Iterator[Region]:
    with fresh_pg_database() as url:
        yield Region(tmp_path, url)


def _body(client: int, batch: int) -> list[dict[str, object]]:
    ts = now_ms() - 1000
    return [
        {"msg_id": f"c{client}-b{batch}-r{r}", "ts": ts, "signal": "VehicleSpeed", "value": r % 130}
        for r in range(RECORDS)
    ]


def test_two_servers_on_one_postgres_region_commit_every_batch_once(region: Region, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    servers = [start_server(region.config, port, tmp_path / f"server-{port}.log") for port in ports]
    answers: list[tuple[int, int, int, str]] = []  # (status, accepted, duplicate, error text)
    resends: list[tuple[int, int, int, str]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {region.tokens[n]}"}
        http = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in ports]
        try:
            for batch in range(BATCHES):
                r = http[(n + batch) % 2].post("/v1/ingest", json=_body(n, batch), headers=headers)
                ok = r.status_code // 100 == 2
                with lock:
                    answers.append(
                        (r.status_code, r.json()["accepted"] if ok else 0, r.json()["duplicate"] if ok else 0, r.text)
                    )
            # at-least-once: the first batch again, to the other server than the first time
            r = http[(n + 1) % 2].post("/v1/ingest", json=_body(n, 0), headers=headers)
            ok = r.status_code // 100 == 2
            with lock:
                resends.append(
                    (r.status_code, r.json()["accepted"] if ok else 0, r.json()["duplicate"] if ok else 0, r.text)
                )
        finally:
            for h in http:
                h.close()

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client, range(CLIENTS)))
        failed = [(status, text[:200]) for status, _, _, text in answers + resends if status // 100 != 2]
        assert not failed, f"{len(failed)} of {len(answers) + len(resends)} batches refused, e.g. {failed[:3]}"
        acknowledged = sum(accepted for _, accepted, _, _ in answers)
        assert acknowledged == CLIENTS * BATCHES * RECORDS
        assert all(duplicate == 0 for _, _, duplicate, _ in answers)
        assert [(accepted, duplicate) for _, accepted, duplicate, _ in resends] == [(0, RECORDS)] * CLIENTS

        engine = create_engine(region.url)
        try:
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(records)).scalar()
                distinct = conn.execute(
                    select(func.count(func.distinct(tuple_(records.c.vehicle_ref, records.c.msg_id))))
                ).scalar()
        finally:
            engine.dispose()
        assert stored == acknowledged, "stored records differ from the acknowledged ones"
        assert distinct == stored, "a record was stored twice"

        vkey = tmp_path / "cn-log.vkey"
        vkey.write_text(region.vkey + "\n")
        verify = subprocess.run(
            [sys.executable, "-m", "onshore", "ledger", "verify", "--key", str(vkey),
             "--url", f"http://127.0.0.1:{ports[1]}", "--region", "cn", "--token", region.auditor],
            capture_output=True, text=True, env=dict(os.environ), timeout=300,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
        assert "NOT VERIFIED" not in verify.stdout
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
