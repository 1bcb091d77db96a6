"""The one record filter (``storage.predicates.RecordFilter``) on SQLite and PostgreSQL: it selects exactly what it
says, and on PostgreSQL an index serves a category over a time range and a tag (EXPLAIN)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

from onshore.errors import InputError
from onshore.model import RecordColumns
from onshore.rules.base import Category
from onshore.storage.migrate import upgrade
from onshore.storage.predicates import CATEGORY_BITS, RecordFilter, category_bits, category_masks
from onshore.storage.records import count_records, count_subjects, insert_records, iter_records, select_records
from onshore.storage.schema import records
from onshore.storage.sql import SQLRecordStore, make_engine
from tests.conftest import fresh_pg_database
from tests.storage import test_record_store

store = test_record_store.store  # the two-backend fixture (SQLite, PostgreSQL)

CATEGORIES = ("general", "personal", "personal,sensitive_personal", "important,personal", "important")
TAGS = ("", "location", "location,trajectory", "location_history", "vehicle_operational")  # a prefix trap
T0 = 1_700_000_000_000


def _batch(n_per_combo: int = 2) -> RecordColumns:
    rows = []
    for k, (cats, tags, i) in enumerate(itertools.product(CATEGORIES, TAGS, range(n_per_combo))):
        rows.append(
            {
                "vehicle_ref": f"v{k % 3}",
                "msg_id": f"m{k}",
                "ts_ms": T0 + k * 1000,
                "signal": ("VehicleSpeed", "Location")[k % 2],
                "value": "1",
                "categories": cats,
                "tags": tags,
                "purpose": ("navigation", "diagnostics")[i % 2],
                "rule_id": "r",
                "origin": "CN",
                "received_ms": T0,
                "subject_ref": f"s{k % 7}",
            }
        )
    return RecordColumns.from_rows(rows)


def _expected(batch: RecordColumns, f: RecordFilter) -> list[str]:
    out = []
    for k, msg_id in enumerate(batch.msg_id):
        cats = set(batch.categories[k].split(","))
        tags = set(batch.tags[k].split(",")) - {""}
        labelled = (cats & set(f.categories)) or (tags & set(f.tags))
        checks = [
            not (f.categories or f.tags) or bool(labelled),
            set(f.with_categories) <= cats,
            not cats & set(f.without_categories),
            not f.purposes or batch.purpose[k] in f.purposes,
            not f.signals or batch.signal[k] in f.signals,
            not f.vehicles or batch.vehicle_ref[k] in f.vehicles,
            f.subject is None or batch.subject_ref[k] == f.subject,
            f.since_ms is None or batch.ts_ms[k] >= f.since_ms,
            f.until_ms is None or batch.ts_ms[k] < f.until_ms,
        ]
        if all(checks):
            out.append(msg_id)
    return out


FILTERS = [
    RecordFilter(),
    RecordFilter(categories=("personal",)),
    RecordFilter(categories=("sensitive_personal", "important")),
    RecordFilter(tags=("location",)),  # whole tags: never location_history
    RecordFilter(tags=("trajectory", "vehicle_operational")),
    RecordFilter(categories=("important",), tags=("location_history",)),  # a retention rule: either
    RecordFilter(with_categories=("personal",), without_categories=("sensitive_personal",)),
    RecordFilter(categories=("personal", "general"), with_categories=("personal",)),
    RecordFilter(categories=("general",), since_ms=T0 + 2_000, until_ms=T0 + 60_000),
    RecordFilter(purposes=("diagnostics",), signals=("Location",), vehicles=("v1", "v2")),
    RecordFilter(subject="s3", tags=("location",), until_ms=T0 + 40_000),
    RecordFilter(after_id=10, categories=("personal",)),
]


@pytest.mark.parametrize("where", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_the_filter_selects_exactly_what_it_says(store: SQLRecordStore, where: RecordFilter) -> None:
    batch = _batch()
    with store.transaction("plant") as conn:
        insert_records(conn, batch, None)
    with store.read("filter") as conn:
        ids = {r.msg_id: r.id for r in select_records(conn, RecordFilter())}
        want = _expected(batch, where)
        if where.after_id:  # the cursor counts from this store's first id (a shared database's ids go on)
            where = dataclasses.replace(where, after_id=min(ids.values()) - 1 + where.after_id)
            want = [m for m in want if ids[m] > where.after_id]
        got = [r.msg_id for r in select_records(conn, where)]
        paged = [r.msg_id for chunk in iter_records(conn, where, chunk=7) for r in chunk]
        counted = count_records(conn, where)
        people = count_subjects(conn, where)
    assert got == want and paged == want and counted == len(want)
    assert people == len({batch.subject_ref[batch.msg_id.index(m)] for m in want})
    assert where == RecordFilter() or 0 < len(want) < len(batch)  # each case can fail both ways


def test_every_category_has_one_bit_and_masks_hold_exactly_their_categories() -> None:
    assert set(CATEGORY_BITS) == {c.value for c in Category}
    assert sorted(CATEGORY_BITS.values()) == [1 << i for i in range(len(CATEGORY_BITS))]
    assert category_bits("personal,sensitive_personal") == 3 and category_bits("") == 0
    with pytest.raises(InputError, match="'secret' has no storage bit"):
        category_bits("personal,secret")
    assert category_bits("personal,secret", strict=False) == 1
    assert category_masks(("important",)) == [m for m in range(16) if m & 4]
    assert category_masks((), ("personal",), ("sensitive_personal",)) == [m for m in range(16) if m & 3 == 1]
    with pytest.raises(InputError, match="category 'nope' is unknown"):
        RecordFilter(categories=("nope",))


def _plan(conn: Connection, where: RecordFilter) -> str:
    stmt = select(records.c.id).where(where.where("postgresql"))
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
    return json.dumps(plan)


def _partition_indexes(conn: Connection, index: str) -> set[str]:
    """The index ``index`` of the partitioned ``records`` and its copy on each partition."""
    children = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(:index)"
        ),
        {"index": index},
    ).scalars()
    return {index, *children}


def _uses(plan: str, indexes: set[str]) -> bool:
    return any(f'"Index Name": "{name}"' in plan for name in indexes)


def test_postgresql_serves_a_category_over_a_time_range_and_a_tag_from_an_index(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        engine = make_engine(url, base_dir=tmp_path)
        try:
            upgrade(engine, region="cn")
            n = 20_000
            rows = [
                {
                    "vehicle_ref": f"v{k % 50}",
                    "msg_id": f"m{k}",
                    "ts_ms": T0 + k * 60_000,
                    "signal": "Location",
                    "value": "1",
                    "categories": CATEGORIES[k % len(CATEGORIES)],
                    "tags": TAGS[k % len(TAGS)],
                    "purpose": "navigation",
                    "rule_id": "r",
                    "origin": "CN",
                    "received_ms": T0,
                    "subject_ref": f"s{k % 500}",
                }
                for k in range(n)
            ]
            with engine.begin() as conn:
                insert_records(conn, RecordColumns.from_rows(rows), None)
                conn.execute(text("ANALYZE records"))
            window = RecordFilter(categories=("sensitive_personal",), since_ms=T0, until_ms=T0 + 3_600_000)
            hour = RecordFilter(since_ms=T0, until_ms=T0 + 3_600_000)  # a time range alone: no index on ts_ms
            tagged = RecordFilter(tags=("trajectory",))
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL enable_seqscan = off"))  # the index must be usable, not merely cheaper
                category_plan, tag_plan, hour_plan = _plan(conn, window), _plan(conn, tagged), _plan(conn, hour)
                # the old comma-text filter: even with sequential scans off, nothing but a scan can answer it
                like = conn.execute(
                    text(
                        "EXPLAIN (FORMAT JSON) SELECT id FROM records"
                        " WHERE ',' || categories || ',' LIKE '%,important,%'"
                    )
                ).scalar()
                # records is partitioned by month: a plan names each partition's own index of the declared one
                category_ts, tag_set = (
                    _partition_indexes(conn, "ix_records_category_ts"),
                    _partition_indexes(conn, "ix_records_tag_set"),
                )
            assert _uses(category_plan, category_ts) and "Seq Scan" not in category_plan
            assert _uses(hour_plan, category_ts) and "Seq Scan" not in hour_plan
            assert "ts_ms" in hour_plan  # the time bound is an index condition, not a filter over every entry
            assert _uses(tag_plan, tag_set) and "Seq Scan" not in tag_plan
            assert "Seq Scan" in json.dumps(like)
            with engine.connect() as conn:
                assert count_records(conn, window) == len(_expected(RecordColumns.from_rows(rows), window)) > 0
                assert count_records(conn, hour) == len(_expected(RecordColumns.from_rows(rows), hour)) == 60
        finally:
            engine.dispose()


@pytest.mark.parametrize(
    "where",
    [
        RecordFilter(since_ms=T0, until_ms=T0 + 3_600_000),
        RecordFilter(until_ms=T0 + 3_600_000),
        RecordFilter(tags=("location",), since_ms=T0),
        RecordFilter(categories=("personal",), since_ms=T0, until_ms=T0 + 3_600_000),
    ],
)
def test_sqlite_serves_a_time_range_from_the_category_time_index(tmp_path: Path, where: RecordFilter) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}", base_dir=tmp_path)
    try:
        upgrade(engine, region="cn")
        with engine.begin() as conn:
            insert_records(conn, _batch(), None)
            stmt = select(records.c.id).where(where.where("sqlite"))
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "INDEX ix_records_category_ts (category_bits=? AND ts_ms" in plan, plan
            assert len(select_records(conn, where)) == len(_expected(_batch(), where)) > 0
    finally:
        engine.dispose()
