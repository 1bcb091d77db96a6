"""`onshore residency check` finds every record planted in a store of the wrong jurisdiction."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.model import RecordColumns
from onshore.runtime import Runtime
from onshore.storage.records import insert_records

runner = CliRunner()


def test_residency_check_finds_all_of_many_randomly_planted_records(tmp_path: Path) -> None:
    init = runner.invoke(app, ["init", str(tmp_path / "ws"), "--json"])
    config = Path(json.loads(init.stdout)["config"])
    rng = random.Random(20260201)
    origins = ["CN", "EU", "US", "JP"]
    expected: Counter[tuple[str, str]] = Counter()
    runtime = Runtime(load_settings(config, env={}))
    try:
        for region_name, region in runtime.regions.items():
            rows = []
            for i in range(rng.randint(500, 1500)):
                origin = rng.choice(origins)
                if origin != region.jurisdiction:
                    expected[(region_name, origin)] += 1
                rows.append(
                    {
                        "vehicle_ref": f"v{rng.randrange(50)}",
                        "msg_id": f"p{i}",
                        "ts_ms": 1,
                        "signal": "VehicleSpeed",
                        "value": "1",
                        "categories": "general",
                        "tags": "",
                        "purpose": "diagnostics",
                        "rule_id": "r",
                        "origin": origin,
                        "received_ms": 1,
                        "subject_ref": f"s{rng.randrange(50)}",
                    }
                )
            with region.store.transaction("plant misplaced records") as conn:  # bypass the store's guard on purpose
                insert_records(conn, RecordColumns.from_rows(rows), None)
    finally:
        runtime.close()
    found = runner.invoke(app, ["residency", "check", "-c", str(config), "--json"])
    assert found.exit_code == 1
    findings = json.loads(found.stdout)["findings"]
    assert Counter({(f["region"], f["origin"]): f["records"] for f in findings}) == expected
    assert sum(expected.values()) > 500  # 100 % of a large, random plant
