"""Group commit: a worker commits the record batches of one fetch in one transaction, on PostgreSQL, and stores,
logs and answers exactly what one-by-one processing does; a refused batch fails alone; a redelivered batch in a
group is answered from its commit and the rest are stored once."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from onshore.ingest.batch import RecordBatch
from onshore.ingest.jetstream import JetStreamLink
from onshore.ledger.store import MerkleLog
from onshore.model import Vehicle
from onshore.runtime import Runtime
from onshore.storage.schema import processed_batches, records
from onshore.storage.store_batches import STORE_IDX, WITH_BATCHES
from onshore.worker import Worker, WorkerStats
from tests.bus.conftest import Distributed, distributed_workspace
from tests.bus.test_nats_bus import _batch, _verify
from tests.conftest import CN_VIN, CN_VIN_2, PG_ADMIN_URL, fresh_pg_database, now_ms

pytestmark = pytest.mark.services

VINS = (CN_VIN, CN_VIN_2, "LSVM0TEST00000003")


class Side:
    """A distributed workspace on a PostgreSQL database of its own, holding ``vehicles``."""

    def __init__(self, ws: Distributed, vehicles: list[Vehicle]) -> None:
        self.ws = ws
        self.runtime = Runtime(self.ws.settings())
        self.runtime.processor.encrypt = False  # ciphertexts differ by their nonces; the digests must not
        self.vehicles = vehicles
        self.region = self.runtime.regions["cn"]
        self.groups: list[int] = []  # the size of each group the processor was given
        group = self.runtime.processor.process_records_once

        def counted(batches: list[RecordBatch]) -> list[dict[str, Any] | Exception]:
            self.groups.append(len(batches))
            return group(batches)

        self.runtime.processor.process_records_once = counted  # type: ignore[method-assign]
        self.start = self.tree_size()

    def tree_size(self) -> int:
        with self.region.store.read("test") as conn:
            return MerkleLog("cn").tree_size(conn)

    def admit(self, vehicle: int, body: list[dict[str, Any]]) -> RecordBatch:
        return self.runtime.ingest.admit_body(self.vehicles[vehicle], orjson.dumps(body), "application/json")

    def drain(self, batches: list[RecordBatch]) -> WorkerStats:
        """Publish ``batches`` and run a worker of this process until the stream is empty."""

        async def scenario() -> WorkerStats:
            link = JetStreamLink(self.runtime.settings.bus, name="test")
            try:
                await link.consumer("cn")
                for batch in batches:
                    await link.publish(batch)
                worker = Worker(self.runtime.settings, "cn", self.runtime.processor, link)
                try:
                    return await worker.run(asyncio.Event(), idle_exit_s=1.5)
                finally:
                    worker.close()
            finally:
                await link.close()

        return asyncio.run(scenario())

    def receipt(self, batch: RecordBatch) -> dict[str, Any]:
        assert self.runtime.queue is not None
        return self.runtime.queue.receipt("cn", batch.batch_id, batch.vehicle.ref)

    def answer(self, result: dict[str, Any]) -> dict[str, Any]:
        """An answer with its ledger index counted from this side's first batch."""
        index = result.get("ledger_index")
        return {**result, "ledger_index": None if index is None else index - self.start}

    def stored(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """The rows (store index counted from the first batch), the events since the first batch, the outcomes."""
        with self.region.store.read("test") as conn:
            # each row with its store event's index (storage.store_batches), not the batch reference it names
            content = [c for c in records.c if c.name not in ("store_idx", "batch_ref")]
            stmt = select(*content, STORE_IDX).select_from(WITH_BATCHES).order_by(records.c.id)
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
            log = MerkleLog("cn")
            events = [orjson.loads(e) for e in log.entries(conn, self.start, log.tree_size(conn))]
            outcomes = [
                str(r[0])
                for r in conn.execute(
                    processed_batches.select().with_only_columns(processed_batches.c.outcome).order_by("batch_id")
                )
            ]
        for row in rows:
            del row["id"]
            row["store_idx"] -= self.start
        return rows, events, outcomes

    def close(self) -> None:
        self.runtime.close()


def _copy_database(source: str, target: str) -> None:
    """Replace database ``target`` by a copy of ``source`` (which nobody may be connected to)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        target_name, source_name = target.rsplit("/", 1)[1], source.rsplit("/", 1)[1]
        conn.execute(f"DROP DATABASE {target_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {target_name} TEMPLATE {source_name}")


@pytest.fixture
def sides(tmp_path: Path, nats_url: str, bus_prefix: str) -> Iterator[tuple[Side, Side]]:
    """``grouped`` (its batches go through a worker) and ``single`` (through `Processor.process_once`): copies of
    one workspace (the same keys, vehicles, subjects and consents) on two databases, the second a copy of the first."""
    with fresh_pg_database() as url_a, fresh_pg_database() as url_b:
        ws = distributed_workspace(tmp_path / "grouped", nats_url, bus_prefix, record_store=url_a)
        setup = Runtime(ws.settings())
        try:
            vehicles = [setup.vehicles.add(vin, "CN").vehicle for vin in VINS]
            for vin in VINS[:2]:  # the third vehicle's personal records are dropped
                owner = setup.vehicles.owner_of(vin, "CN")
                setup.consents.grant(owner, "navigation", "separate", "7d", actor_role="officer")
        finally:
            setup.close()
        _copy_database(url_a, url_b)
        shutil.copytree(ws.folder, tmp_path / "single")
        config = tmp_path / "single" / ws.config.name
        config.write_text(config.read_text(encoding="utf-8").replace(url_a, url_b), encoding="utf-8")
        grouped, single = Side(ws, vehicles), Side(Distributed(tmp_path / "single", config, {}), vehicles)
        try:
            yield grouped, single
        finally:
            grouped.close()
            single.close()


def test_a_group_stores_logs_and_answers_what_one_by_one_processing_does(sides: tuple[Side, Side]) -> None:
    grouped, single = sides
    ts = now_ms() - 5000
    bodies = [(v, _batch(ts + 100 * v, f"v{v}b{k}-")) for k in range(2) for v in range(3)]
    batches = [grouped.admit(vehicle, body) for vehicle, body in bodies]  # single gets the very same
    stats = grouped.drain(batches)
    alone = [single.runtime.processor.process_once(b) for b in batches]

    assert (stats.processed, stats.refused, stats.retried) == (6, 0, 0)
    assert grouped.groups and max(grouped.groups) > 1, "the worker never grouped the batches it fetched"
    assert sum(grouped.groups) == 6 and single.groups == []
    answers = [grouped.receipt(b) for b in batches]
    assert [a["status"] for a in answers] == ["done"] * 6
    assert [grouped.answer(a["result"]) for a in answers] == [single.answer(a) for a in alone]
    rows, events, outcomes = grouped.stored()
    assert len(rows) == 4 * 4 + 2 * 2 and [e["kind"] for e in events] == ["collect", "store"] * 6
    assert all(e["digest"] for e in events if e["kind"] == "store")
    assert (rows, events) == single.stored()[:2]
    assert len(outcomes) == 6 and sorted(orjson.loads(o)["accepted"] for o in outcomes) == [2, 2, 4, 4, 4, 4]
    _verify(grouped.ws.config)


def test_a_group_with_redeliveries_and_resends_commits_each_batch_once(sides: tuple[Side, Side]) -> None:
    """Answered before the group, committed earlier in the group, rows stored before: one by one's outcomes."""
    grouped, single = sides
    ts = now_ms() - 5000
    bodies = [
        (0, _batch(ts, "a")),
        (1, _batch(ts, "b")),
        (2, _batch(ts, "c")),
        (1, _batch(ts, "b")[:3] + _batch(ts + 10, "d")),  # a resend of three of b's records, and new ones
    ]
    batches = [grouped.admit(vehicle, body) for vehicle, body in bodies]  # single gets the very same
    committed = grouped.runtime.processor.process_once(batches[0])  # a worker committed it, then died
    single.runtime.processor.process_once(batches[0])
    group = [batches[0], batches[1], batches[2], batches[1], batches[3]]  # b twice: a redelivery inside the group
    together = grouped.runtime.processor.process_records_once(group)
    alone = [single.runtime.processor.process_once(b) for b in group]

    assert not any(isinstance(a, Exception) for a in together)
    assert together[0] == committed and together[1] == together[3]
    assert [grouped.answer(a) for a in together] == [single.answer(a) for a in alone]  # type: ignore[arg-type]
    assert together[4]["duplicate"] == 3 + 1  # the three resent records stored before, one in the batch twice
    rows, events, outcomes = grouped.stored()
    assert (rows, events) == single.stored()[:2]
    assert [e["kind"] for e in events] == ["collect", "store"] * 4 and len(outcomes) == 4
    _verify(grouped.ws.config)


def test_a_refused_batch_fails_alone_and_a_redelivered_one_is_answered_from_its_commit(
    sides: tuple[Side, Side],
) -> None:
    grouped, _single = sides
    ts = now_ms() - 5000
    good = [grouped.admit(v, _batch(ts, f"g{v}")) for v in range(3)]
    wrong_shape = grouped.admit(1, [{"msg_id": "w", "ts": ts, "signal": "VehicleSpeed", "value": "fast"}])
    first = grouped.runtime.processor.process_once(good[2])  # committed, never acknowledged
    stats = grouped.drain([good[0], wrong_shape, good[1], good[2]])

    assert (stats.processed, stats.refused, stats.retried) == (3, 1, 0)
    assert grouped.groups == [4]
    refused = grouped.receipt(wrong_shape)
    assert refused["status"] == "failed" and refused["http_status"] == 422
    assert refused["error"]["code"] == "validation_failed"
    assert [grouped.receipt(b)["status"] for b in good] == ["done"] * 3
    assert grouped.receipt(good[2])["result"] == first
    rows, events, outcomes = grouped.stored()
    assert len(rows) == 4 + 4 + 2 and [e["kind"] for e in events] == ["collect", "store"] * 3 and len(outcomes) == 3
    _verify(grouped.ws.config)
