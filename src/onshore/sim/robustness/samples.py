"""Well-formed inputs the fuzzers start from and mutate: batches, images, a basis, a config. All synthetic."""

from __future__ import annotations

import functools
from typing import Any

from onshore import clock
from onshore.ingest.batch import FrameBatch, FrameMeta, RecordBatch
from onshore.model import Vehicle
from onshore.sim.signals import SIGNAL_NAMES

NOW_MS = clock.now_ms()
MIN_TS_MS = 946684800000  # admit's floor (2000-01-01)
VEHICLE = Vehicle(ref="0" * 32, market="CN", region="cn")  # a pseudonym no vehicle has
SIGNALS = tuple(sorted({name for names in SIGNAL_NAMES.values() for name in names}))
BASIS: dict[str, Any] = {
    "id": "fz-basis",
    "region": "cn",
    "route": "standard_contract",
    "scope": {"categories": ["general"], "purposes": ["diagnostics"], "recipient": "acme-gmbh", "destinations": ["DE"]},
}
EXPORT_REQUEST: dict[str, Any] = {
    "region": "cn",
    "destination": "DE",
    "recipient": "acme-gmbh",
    "purpose": "diagnostics",
    "since": "2024-05-01T00:00:00+08:00",
    "until": "2024-06-01T00:00:00+08:00",
    "fleet": "all",
}
BASIS_YAML = """\
id: fz-basis
region: cn
route: standard_contract
reference: SCC-2024-17
scope:
  categories: [general, personal]
  purposes: [diagnostics]
  recipient: acme-gmbh
  destinations: [DE]
conditions:
  - name: coarsen_position
    params: {cell_deg: 0.1}
  - name: aggregate
    params: {cell_deg: 0.5, bucket_s: 86400, epsilon: 1.0, min_count: 5}
expires_on: 2030-12-31
"""
CONFIG_TOML = """\
[server]
port = 8470

[ingest]
max_batch_records = 5000

[regions.cn]
jurisdiction = "CN"
location = "cn-guizhou"
record_store = "sqlite:///onshore-data/cn/records.sqlite"
blob_store = "file://onshore-data/cn/blobs"
key_store = "file://onshore-data/cn/keys"

[[tokens]]
name = "officer"
role = "officer"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"""


def alias_bomb(levels: int = 8) -> str:
    """A basis whose ``scope.categories`` is a "billion laughs": ``levels`` anchors of nine aliases each."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    scope = f"scope: {{categories: *a{levels}, purposes: [diagnostics], recipient: acme, destinations: [DE]}}"
    return "\n".join([*lines, "id: fz-bomb", "region: cn", "route: standard_contract", scope]) + "\n"


def batches() -> list[RecordBatch | FrameBatch]:
    """A record batch and a frame batch as admit builds them."""
    vehicle = VEHICLE
    records = RecordBatch(
        vehicle=vehicle,
        received_ms=NOW_MS,
        msg_ids=["m1", "m2", "m3"],
        ts_ms=[NOW_MS - 3000, NOW_MS - 2000, NOW_MS - 1000],
        signals=["VehicleSpeed", "Location", "Vehicle.Cabin.Infotainment.Media.Played.Track"],
        values=[42.5, {"latitude": 30.0, "longitude": 120.0}, "a track"],
        purposes=[None, "navigation", None],
        profiles=[None, None, "1"],
        received=4,
        duplicates_in_batch=1,
    )
    frame = FrameBatch(
        vehicle=vehicle,
        received_ms=NOW_MS,
        meta=FrameMeta("f1", "front", NOW_MS - 1000, 30.0, 120.0, None),
        media_type="image/jpeg",
        width=64,
        height=48,
        image=images()[0],
    )
    return [records, frame]


@functools.cache
def images() -> tuple[bytes, ...]:
    """Small synthetic frames: a baseline JPEG, a progressive JPEG and a PNG of blurred noise (64x48)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (5, 5), 2)
    jpeg = bytes(cv2.imencode(".jpg", image)[1])
    progressive = bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1])
    png = bytes(cv2.imencode(".png", image)[1])
    return jpeg, progressive, png


def export_columns() -> tuple[Any, Any]:
    """Columns of a data class as the exporter hands them to transforms (positions, times, tags), and a context."""
    import orjson

    from onshore.deid.pseudonyms import recipient_key
    from onshore.deid.transforms import Columns, TransformContext
    from onshore.geo.zones import ZoneIndex

    values: list[Any] = [{"latitude": 30.5, "longitude": 120.5}, 31.25, {"latitude": -89.9, "longitude": 179.9}, 7]
    n = len(values)
    cols = Columns(
        cls=["c"] * n,
        ts_ms=[NOW_MS - i * 3_600_000 for i in range(n)],
        signal=["Location", "Latitude", "Location", "VehicleSpeed"],
        value=[orjson.dumps(v).decode() for v in values],
        categories=["personal,sensitive_personal"] * n,
        tags=["location,trajectory,identifier"] * n,
        purpose=["diagnostics"] * n,
        vehicle=[f"v{i}" for i in range(n)],
        subject=[f"s{i}" for i in range(n)],
        zone=[None, None, "zone-1", None],
    )
    return cols, TransformContext(recipient_key(b"k" * 32, "acme-gmbh"), ZoneIndex([]))
