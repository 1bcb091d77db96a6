"""One storage suite, run against every backend: SQLite (embedded) and PostgreSQL (distributed).

PostgreSQL is the real server on 127.0.0.1:5432; a missing server skips locally and fails in CI.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.errors import ConflictError, ResidencyError
from onshore.ledger.store import MerkleLog
from onshore.model import LifecycleEvent, RecordColumns, StoredRows, Vehicle
from onshore.storage.migrate import upgrade
from onshore.storage.sql import SQLRecordStore, make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLRecordStore]:
    url = "sqlite:///records.sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    region = f"cn{secrets.token_hex(3)}"
    engine = make_engine(url, base_dir=tmp_path)
    upgrade(engine, region=region)
    s = SQLRecordStore(engine, region=region, jurisdiction="CN", journal=MerkleLog(region))
    yield s
    if request.param == "postgresql":
        with s.transaction("cleanup") as conn:
            for table in ("records", "record_keys", "vehicles", "consents", "unclassified_signals"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    s.dispose()


def _rows(ids: list[str], origin: str = "CN") -> StoredRows:
    rows = [
        (
            "ref1",
            m,
            1_700_000_000_000,
            "VehicleSpeed",
            "1",
            "general",
            "vehicle_operational",
            "vehicle_services",
            "cn.sig.vehicle-operational",
            origin,
            None,
            1_700_000_000_001,
            "ref1",
        )
        for m in ids
    ]
    return StoredRows(
        origin=origin,
        vehicle=Vehicle("ref1", origin, "cn"),
        received_ms=1,
        records=RecordColumns.from_rows(rows),
        dropped_no_consent=0,
        dropped_by_purpose={},
        by_category={"general": len(rows)},
        zone_hits=0,
        duplicates_in_batch=0,
        unclassified_signals=[],
    )


def _events(region: str) -> list[LifecycleEvent]:
    return [LifecycleEvent("collect", region, 1, "vehicle"), LifecycleEvent("store", region, 1, "vehicle")]


def test_commit_batch_stores_rows_and_events_atomically(store: SQLRecordStore) -> None:
    result = store.commit_batch(_rows(["a", "b", "c"]), _events(store.region))
    assert (result.accepted, result.duplicate, result.ledger_index) == (3, 0, 0)
    assert store.count_records() == 3 and store.origins() == {"CN": 3}


def test_resent_rows_are_counted_as_duplicates_and_stored_once(store: SQLRecordStore) -> None:
    store.commit_batch(_rows(["a", "b"]), _events(store.region))
    result = store.commit_batch(_rows(["b", "c", "a"]), _events(store.region))
    assert (result.accepted, result.duplicate) == (1, 2)
    assert result.by_category == {"general": 1}
    assert sorted(r["msg_id"] for r in store.query_records()) == ["a", "b", "c"]


def test_store_refuses_rows_of_another_jurisdiction(store: SQLRecordStore) -> None:
    with pytest.raises(ResidencyError, match="refused rows of origin"):
        store.commit_batch(_rows(["x"], origin="EU"), _events(store.region))
    assert store.count_records() == 0


def test_vehicle_registry(store: SQLRecordStore) -> None:
    store.add_vehicle("ref1", "CN", "a" * 64, 1, replace=False)
    with pytest.raises(ConflictError):
        store.add_vehicle("ref1", "CN", "b" * 64, 2, replace=False)
    store.add_vehicle("ref1", "CN", "b" * 64, 2, replace=True)
    assert store.vehicle_by_token("a" * 64) is None
    assert store.vehicle_by_token("b" * 64) == ("ref1", "CN", None)
    assert store.revoke_vehicle("ref1", 5) and not store.revoke_vehicle("ref1", 6)


def test_subject_consents_expire_and_withdraw(store: SQLRecordStore) -> None:
    from onshore.storage.subjects import SubjectStore

    subjects = SubjectStore(store)
    subjects.add_subject("sub_a", "owner", None, 1)
    event = LifecycleEvent("consent_change", store.region, 1, "officer")
    subjects.grant_consent("sub_a", "navigation", "ordinary", 10, 100, event)
    subjects.grant_consent("sub_a", "navigation", "separate", 10, None, event)
    assert subjects.active_consents(["sub_a"], 50) == {"sub_a": {"navigation": "separate"}}
    assert subjects.withdraw_consent("sub_a", "navigation", 60, event) is not None
    assert subjects.active_consents(["sub_a"], 70) == {"sub_a": {}}
    subjects.grant_consent("sub_a", "infotainment", "ordinary", 10, 100, event)
    assert subjects.active_consents(["sub_a"], 150) == {"sub_a": {}}, "an expired consent behaves as withdrawn"
    assert subjects.withdraw_consent("sub_a", "infotainment", 160, event) is None
