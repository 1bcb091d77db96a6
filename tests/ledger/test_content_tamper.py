"""The ledger covers what was stored: `onshore ledger verify -c CONFIG` re-derives each batch from its rows.

Each tampering an operator with database access could do — one stored value, one timestamp, one category, one
origin changed, one row deleted, a tombstone forged — is caught and names the batch's ledger index; an untouched
store (also after retention and an erasure removed rows with their delete events) verifies. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.storage.content import batch_digest, content_row, row_digest, set_digest
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, fresh_pg_database, now_ms

runner = CliRunner()
DAY = 86_400_000


@dataclass
class Deployment:
    workspace: Workspace
    runtime: Runtime
    env: dict[str, str]

    def verify(self) -> Any:
        return runner.invoke(
            app, ["ledger", "verify", "-c", str(self.workspace.config), "--region", "cn"], env=self.env
        )

    def sql(self, statement: str, **params: Any) -> Any:
        with self.runtime.regions["cn"].store.engine.begin() as conn:
            return conn.execute(text(statement), params)

    def row(self, msg_id: str) -> dict[str, Any]:
        with self.runtime.regions["cn"].store.engine.connect() as conn:
            # a row names its batch, the batch its store event (storage.store_batches)
            found = (
                conn.execute(
                    text(
                        "SELECT r.*, b.store_idx AS store_idx FROM records r"
                        " JOIN store_batches b ON b.batch_ref = r.batch_ref WHERE r.msg_id = :m"
                    ),
                    {"m": msg_id},
                )
                .mappings()
                .one()
            )
        return dict(found)


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[Deployment]:
    if request.param == "sqlite":
        yield _filled(Deployment(workspace, workspace.runtime, {}))
        return
    with fresh_pg_database() as url:
        env = {"ONSHORE_REGIONS__CN__RECORD_STORE": url}
        runtime = Runtime(load_settings(workspace.config, env=env), create=True)
        try:
            yield _filled(Deployment(workspace, runtime, env))
        finally:
            runtime.close()


def _filled(d: Deployment) -> Deployment:
    """Two vehicles, three batches (general and personal rows), then a retention run and an erasure."""
    rt = d.runtime
    one = rt.vehicles.add(CN_VIN, "CN").vehicle
    two = rt.vehicles.add(CN_VIN_2, "CN").vehicle
    owner_two = rt.vehicles.owner_of(CN_VIN_2, "CN")
    rt.consents.grant(owner_two, "infotainment", "ordinary", None, actor_role="officer")
    now = now_ms()
    rt.ingest.ingest_records(
        one, [{"msg_id": f"s{i}", "ts": now - 1000 - i, "signal": "VehicleSpeed", "value": i} for i in range(5)]
    )
    rt.ingest.ingest_records(
        two,
        [{"msg_id": f"m{i}", "ts": now - 2000 - i, "signal": "MediaNowPlayingTitle", "value": "x"} for i in range(3)]
        + [{"msg_id": "old", "ts": now - 400 * DAY, "signal": "MediaNowPlayingTitle", "value": "x"}],
    )
    rt.ingest.ingest_records(
        one, [{"msg_id": f"t{i}", "ts": now - 3000 - i, "signal": "Odometer", "value": i} for i in range(4)]
    )
    assert any(r.deleted for r in rt.retention.run())  # "old" expires under the personal-data policy
    assert rt.requests.erase(owner_two, actor_role="officer").to_dict()["regions"]["cn"]["records_purged"] == 3
    return d


def _batch_of(d: Deployment, msg_id: str) -> int:
    return int(d.row(msg_id)["store_idx"])


def test_an_untouched_store_verifies_after_retention_and_erasure(deployment: Deployment) -> None:
    result = deployment.verify()
    assert result.exit_code == 0, result.output
    assert "VERIFIED  region cn" in result.output
    as_json = runner.invoke(
        app, ["ledger", "verify", "-c", str(deployment.workspace.config), "--json"], env=deployment.env
    )
    verdict = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and verdict["ok"] is True
    cn = verdict["regions"]["cn"]
    assert cn["batches_checked"] == 3 and cn["tombstones_checked"] >= 1 and cn["rows_not_covered"] == 0


TAMPERINGS: dict[str, Callable[[Deployment], str]] = {}


def tampering(name: str) -> Callable[[Callable[[Deployment], str]], Callable[[Deployment], str]]:
    def register(fn: Callable[[Deployment], str]) -> Callable[[Deployment], str]:
        TAMPERINGS[name] = fn
        return fn

    return register


@tampering("a stored value")
def _value(d: Deployment) -> str:
    d.sql("UPDATE records SET value = '999' WHERE msg_id = 's2'")
    return "s2"


@tampering("a timestamp")
def _time(d: Deployment) -> str:
    d.sql("UPDATE records SET ts_ms = ts_ms - 86400000 WHERE msg_id = 't1'")
    return "t1"


@tampering("a category")
def _category(d: Deployment) -> str:
    d.sql("UPDATE records SET categories = 'general' WHERE msg_id = 's0'")
    d.sql("UPDATE records SET categories = 'personal' WHERE msg_id = 's0'")  # changed twice: not a no-op
    return "s0"


@tampering("a category's index bits")
def _category_bits(d: Deployment) -> str:
    d.sql("UPDATE records SET category_bits = 0 WHERE msg_id = 's0'")  # content intact, filters now miss it
    return "s0"


@tampering("an origin")
def _origin(d: Deployment) -> str:
    d.sql("UPDATE records SET origin = 'EU' WHERE msg_id = 't3'")
    return "t3"


@tampering("a deleted row")
def _deleted(d: Deployment) -> str:
    d.sql("DELETE FROM records WHERE msg_id = 's4'")
    return "s4"


@tampering("a batch pointed at another store event")
def _repointed(d: Deployment) -> str:
    d.sql(
        "UPDATE store_batches SET store_idx = store_idx + 1"
        " WHERE batch_ref = (SELECT batch_ref FROM records WHERE msg_id = 't1')"
    )
    return "t1"


@pytest.mark.parametrize("what", sorted(TAMPERINGS))
def test_each_tampering_is_caught_and_names_its_batch(deployment: Deployment, what: str) -> None:
    batches = {m: _batch_of(deployment, m) for m in ("s0", "s2", "s4", "t1", "t3")}
    victim = TAMPERINGS[what](deployment)
    result = deployment.verify()
    assert result.exit_code == 1, result.output
    assert "NOT VERIFIED" in result.output
    assert f"batch stored at ledger index {batches[victim]} " in " ".join(result.output.split())
    other = batches["t1"] if victim.startswith("s") else batches["s0"]
    assert f"ledger index {other} " not in " ".join(result.output.split()), "only the touched batch fails"


def test_a_row_moved_to_another_batch_fails_both_batches(deployment: Deployment) -> None:
    batches = {m: _batch_of(deployment, m) for m in ("s2", "t0")}
    deployment.sql(
        "UPDATE records SET batch_ref = (SELECT batch_ref FROM records WHERE msg_id = 't0') WHERE msg_id = 's2'"
    )
    result = deployment.verify()
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"stored at ledger index {batches['s2']} (5 rows)" in said  # one row short
    assert f"stored at ledger index {batches['t0']} (4 rows)" in said  # one row too many


def test_a_row_deleted_with_a_forged_tombstone_is_caught(deployment: Deployment) -> None:
    row = deployment.row("s1")
    digest = row_digest(content_row(row))
    deployment.sql("DELETE FROM records WHERE msg_id = 's1'")
    # the tombstone names the retention run's delete event: its digest no longer matches its tombstones
    with deployment.runtime.regions["cn"].store.engine.connect() as conn:
        delete_idx = conn.execute(text("SELECT MAX(delete_idx) FROM record_tombstones")).scalar()
    deployment.sql(
        "INSERT INTO record_tombstones (store_idx, delete_idx, row_digest) VALUES (:s, :d, :h)",
        s=row["store_idx"],
        d=delete_idx,
        h=digest,
    )
    result = deployment.verify()
    assert result.exit_code == 1, result.output
    assert f"delete event at ledger index {delete_idx}: its tombstones do not match" in " ".join(result.output.split())


def test_the_operator_check_needs_no_key_and_refuses_an_unknown_region(deployment: Deployment) -> None:
    unknown = runner.invoke(
        app, ["ledger", "verify", "-c", str(deployment.workspace.config), "--region", "mars"], env=deployment.env
    )
    assert unknown.exit_code == 2 and "region 'mars' is not configured" in unknown.output
    no_key = runner.invoke(app, ["ledger", "verify", "--bundle", "x.json"])
    assert no_key.exit_code == 2 and "--key" in no_key.output


def test_the_ingest_batch_digest_is_the_set_digest_of_its_row_digests() -> None:
    """The hot path's one-pass digest commits to exactly what verification re-derives row by row."""
    import hashlib

    columns = [["vref"] * 3, ["m2", "m1", "m3"], [3, 1, 2], ["Speed"] * 3, ['{"v":1}', None, "enc:x"], ["general"] * 3]
    rows = list(zip(*columns, strict=True))
    digests = sorted(row_digest(row) for row in rows)
    assert batch_digest(columns) == set_digest(reversed(digests))  # the order rows come in does not matter
    assert batch_digest(columns) == hashlib.sha256(b"".join(digests)).hexdigest()
    edited = [*columns[:2], [3, 1, 4], *columns[3:]]
    assert batch_digest(edited) != batch_digest(columns)
