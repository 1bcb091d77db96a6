"""Rights benchmark: erasure by key destruction, purge, access bundle, and the cost of encryption at rest.

    python bench/rights.py --json

Prints one JSON line:
  key_destroy_s           destroying one subject's data key (after which their data is unreadable everywhere)
  purge_s                 deleting that subject's rows, consents and bindings, with the ledger event
  access_bundle_s         building another subject's full access bundle (decrypting their records)
  ingest_ratio_encrypted  ingest throughput with per-subject AES-GCM encryption / without, same records, same run
The store holds --records records (default 1,000,000) of --subjects subjects (default 1,000), one vehicle each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.workspace import init_workspace

SIGNALS = (
    ("VehicleSpeed", lambda i: float(i % 130)),
    ("MediaNowPlayingTitle", lambda i: f"Invented Song {i % 97}"),
    ("Location", lambda i: {"latitude": 26.5 + (i % 100) / 1000, "longitude": 106.6 + (i % 50) / 1000}),
    ("Soc", lambda i: float(i % 100)),
)


def vin(i: int) -> str:
    return f"LSVMB{i:012d}"


def body(vehicle_index: int, start: int, n: int, base_ts: int) -> bytes:
    lines = []
    for k in range(start, start + n):
        name, make = SIGNALS[k % len(SIGNALS)]
        lines.append(
            orjson.dumps({"msg_id": f"{vehicle_index}-{k}", "ts": base_ts + k, "signal": name, "value": make(k)})
        )
    return b"\n".join(lines)


def workspace(folder: Path, subjects: int) -> tuple[Runtime, list[Any]]:
    config, _ = init_workspace(folder)
    # setup speed: the comparison below runs both sides under the same setting
    os.environ["ONSHORE_REGIONS__CN__SQLITE_SYNCHRONOUS"] = "NORMAL"
    runtime = Runtime(load_settings(config), create=True)
    vehicles = []
    for i in range(subjects):
        issued = runtime.vehicles.add(vin(i), "CN")
        owner = runtime.consents.subject_at_vehicle(issued.vehicle, None)
        runtime.consents.grant(owner, "navigation", "separate", "365d", actor_role="officer")
        runtime.consents.grant(owner, "infotainment", "ordinary", "365d", actor_role="officer")
        vehicles.append(issued.vehicle)
    return runtime, vehicles


def fill(runtime: Runtime, vehicles: list[Any], records: int, batch: int) -> float:
    per_vehicle = records // len(vehicles)
    base_ts = int(time.time() * 1000) - 86_400_000
    start = time.perf_counter()
    for i, vehicle in enumerate(vehicles):
        for k in range(0, per_vehicle, batch):
            runtime.ingest.ingest_body(
                vehicle, body(i, k, min(batch, per_vehicle - k), base_ts), "application/x-ndjson"
            )
    return per_vehicle * len(vehicles) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--ratio-records", type=int, default=200_000, help="records for the encryption ratio")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"records": args.records, "subjects": args.subjects}
    with tempfile.TemporaryDirectory() as tmp:
        # encryption ratio: same records, two fresh workspaces, encryption on and off
        rates = {}
        for encrypt in (False, True):
            runtime, vehicles = workspace(Path(tmp) / f"ratio-{encrypt}", 100)
            runtime.processor.encrypt = encrypt
            rates[encrypt] = fill(runtime, vehicles, args.ratio_records, args.batch)
            runtime.close()
        result["ingest_records_per_s_plain"] = round(rates[False])
        result["ingest_records_per_s_encrypted"] = round(rates[True])
        result["ingest_ratio_encrypted"] = round(rates[True] / rates[False], 3)

        runtime, vehicles = workspace(Path(tmp) / "big", args.subjects)
        result["fill_records_per_s"] = round(fill(runtime, vehicles, args.records, args.batch))
        region = runtime.regions["cn"]
        victim = runtime.consents.subject_at_vehicle(vehicles[len(vehicles) // 2], None)
        other = runtime.consents.subject_at_vehicle(vehicles[1], None)

        start = time.perf_counter()
        assert region.subject_keys.destroy(victim)
        result["key_destroy_s"] = round(time.perf_counter() - start, 4)

        from onshore.model import LifecycleEvent

        start = time.perf_counter()
        purged = region.subjects.purge(
            victim, int(time.time() * 1000), [LifecycleEvent("erasure_request", "cn", 0, "officer")]
        )
        result["purge_s"] = round(time.perf_counter() - start, 4)
        result["purged_records"] = purged.records

        start = time.perf_counter()
        bundle = runtime.requests.access_bundle(other, actor_role="officer")
        result["access_bundle_s"] = round(time.perf_counter() - start, 4)
        result["access_bundle_records"] = bundle["summary"]["records"]
        runtime.close()
    print(orjson.dumps(result).decode() if args.json else result)


if __name__ == "__main__":
    main()
