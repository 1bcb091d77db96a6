"""Releases on a PostgreSQL record store: concurrent releases of one region are serialised."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import psycopg

from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.storage.writes import region_lock_key
from tests.border.helpers import Plant, basis, plant, request, utc
from tests.conftest import Workspace, fresh_pg_database

AT = utc("2024-06-15")


def test_a_release_waits_for_a_concurrent_one_of_its_region(workspace: Workspace, tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        rt = Runtime(load_settings(workspace.config, env={"ONSHORE_REGIONS__CN__RECORD_STORE": url}), create=True)
        try:
            plant(rt, "cn", [Plant("MilesToArrival", 20), Plant("VehicleSpeed", 20)], AT)
            basis(rt, "cn", "cn-scc-1", "standard_contract")
            done: dict[str, object] = {}

            def release() -> None:
                done["result"] = rt.border.run(
                    request("cn", AT + dt.timedelta(hours=1)), tmp_path / "b", actor_role="officer", at=AT
                )

            # another writer of the region (a release in another process) holds the region's write lock
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as other:
                other.execute("SELECT pg_advisory_xact_lock(%s)", (region_lock_key("cn"),))
                worker = threading.Thread(target=release)
                worker.start()
                time.sleep(1.5)
                assert worker.is_alive() and "result" not in done  # waiting, not counting beside it
                other.commit()  # the other release ends
            worker.join(timeout=60)
            assert not worker.is_alive()
            result = done["result"]
            assert result.released  # type: ignore[attr-defined]
        finally:
            rt.close()
