"""The ingest seam: admitted batches survive the bus's encoding, process to the same rows, and frames take the
same minimise stage as signal records.

Two workspaces copied from one (same keys, same registry, same consents) receive the same input at the same
time, one over the direct in-process bus and one with every batch encoded and decoded on the way; their stores
must then hold the same rows. Values are compared opened (decrypted): ciphertexts differ by their random nonces.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from onshore.config import IngestSettings, load_settings
from onshore.errors import BatchFormatError
from onshore.ingest.batch import BATCH_VERSION, FrameBatch, RecordBatch, decode
from onshore.model import ClassifiedBatch, StoredRows, Vehicle
from onshore.pipeline import process
from onshore.pipeline.admit import admit, records_from_python
from onshore.runtime import Runtime
from onshore.storage.schema import records
from onshore.vision.admit import admit_frame
from onshore.vision.codec import encode_frame
from onshore.vision.headers import FrameLimits
from onshore.vision.ingest import FrameMeta
from onshore.workspace import init_workspace
from tests.border.helpers import ZONE_POINT
from tests.conftest import CN_VIN, Workspace, now_ms
from tests.vision.test_anonymized_frames import build_street_frame
from tests.vision.test_frame_ingest import frame_rows, ledger_events, ledger_events_of, noise_jpeg, runtime_with_pack

VEHICLE = Vehicle(ref="0" * 32, market="CN", region="cn")


def _records(ts: int) -> list[dict[str, Any]]:
    """A batch that takes every branch of the pipeline: general, coarsened and encrypted, zone, no consent,
    unknown signal, a value normalised by classify, and an in-batch duplicate."""
    return [
        {"msg_id": "s1", "ts": ts, "signal": "VehicleSpeed", "value": 42.5},
        {"msg_id": "s2", "ts": ts + 1, "signal": "Odometer", "value": 2**62},
        {"msg_id": "s3", "ts": ts + 2, "signal": "Location", "value": {"latitude": 26.6470123, "longitude": 106.63}},
        {"msg_id": "s4", "ts": ts + 3, "signal": "Location", "value": ZONE_POINT, "purpose": "navigation"},
        {"msg_id": "s5", "ts": ts + 4, "signal": "Location", "value": "(26.6 N, 106.6 E)"},
        {"msg_id": "s6", "ts": ts + 5, "signal": "MediaNowPlayingArtist", "value": "Invented Band"},
        {"msg_id": "s7", "ts": ts + 6, "signal": "VendorExperimentalFoo", "value": {"a": [1, None, True, "ü"]}},
        {"msg_id": "s1", "ts": ts, "signal": "VehicleSpeed", "value": 42.5},
    ]


def test_an_admitted_record_batch_survives_encode_and_decode() -> None:
    limits = IngestSettings()
    ts = now_ms() - 5000
    batch = admit(records_from_python(_records(ts), limits), VEHICLE, limits, now_ms=ts + 5000)
    data = batch.encode()
    back = decode(data)
    assert isinstance(back, RecordBatch) and back == batch
    assert back.version == BATCH_VERSION and back.received == 8 and back.duplicates_in_batch == 1 and len(back) == 7
    # types survive, not only values: a float stays a float, a 64-bit integer an integer
    assert [type(v) for v in back.values] == [type(v) for v in batch.values]
    assert type(back.values[0]) is float and back.values[1] == 2**62 and back.vehicle == VEHICLE


def test_an_admitted_frame_survives_encode_and_decode() -> None:
    image = noise_jpeg()
    meta = FrameMeta("f-1", "front", now_ms() - 1000, 26.6, 106.6, "driving_safety")
    frame = admit_frame(VEHICLE, image, meta, FrameLimits(), now_ms=now_ms())
    back = decode(frame.encode())
    assert isinstance(back, FrameBatch) and back == frame and back.image == image
    assert (back.media_type, back.width, back.height) == ("image/jpeg", 320, 240)


def test_decode_refuses_another_version_with_the_version_named() -> None:
    limits = IngestSettings()
    batch = admit(records_from_python(_records(now_ms() - 5000), limits), VEHICLE, limits)
    future = msgspec.structs.replace(batch, version=BATCH_VERSION + 1).encode()
    with pytest.raises(
        BatchFormatError, match=rf"version {BATCH_VERSION + 1}; this onshore reads batch version {BATCH_VERSION}"
    ):
        decode(future)
    # a later version may change the layout too: its version is still what the refusal names
    other_layout = msgspec.msgpack.encode({"kind": "records", "version": 7, "columns": {"ts": [1]}})
    with pytest.raises(
        BatchFormatError, match=rf"batch has version 7; this onshore reads batch version {BATCH_VERSION}"
    ):
        decode(other_layout)


def _frame_fields(**change: Any) -> dict[str, Any]:
    fields = {
        "kind": "frame",
        "version": BATCH_VERSION,
        "vehicle": {"ref": VEHICLE.ref, "market": "CN", "region": "cn"},
        "received_ms": 1,
        "meta": {"msg_id": "f-1", "camera": "front", "ts_ms": 1},
        "media_type": "image/jpeg",
        "width": 1,
        "height": 1,
        "image": b"\xff\xd8\xff",
    }
    return {k: v for k, v in {**fields, **change}.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", r"0 bytes are not an onshore batch \(Input data was truncated\)"),
        (b"\xc1garbage", r"8 bytes are not an onshore batch \(MessagePack data is malformed: invalid opcode"),
        (orjson.dumps([{"msg_id": "m1", "signal": "VehicleSpeed"}]), r"bytes are not an onshore batch"),
        (msgspec.msgpack.encode(5), r"not an onshore batch \(Expected `object`, got `int`\)"),
        (msgspec.msgpack.encode(_frame_fields(kind=CN_VIN)), r"\(Invalid value \(a value\) - at `\$.kind`\)"),
        (msgspec.msgpack.encode(_frame_fields(image=None)), r"\(Object missing required field `image`\)"),
        (msgspec.msgpack.encode(_frame_fields(width="1")), r"\(Expected `int`, got `str` - at `\$.width`\)"),
        (msgspec.msgpack.encode(_frame_fields(version="1")), r"\(Expected `int`, got `str` - at `\$.version`\)"),
    ],
    ids=["empty", "not msgpack", "a JSON body", "not a map", "unknown kind", "missing field", "mistyped", "version"],
)
def test_decode_refuses_garbage_with_a_precise_error_and_no_value(data: bytes, reason: str) -> None:
    with pytest.raises(BatchFormatError, match=reason) as refused:
        decode(data)
    assert refused.value.status == 500 and refused.value.code == "batch_invalid"
    assert CN_VIN not in refused.value.message and "nothing was processed" in refused.value.message


def test_decode_refuses_record_columns_of_unequal_length() -> None:
    limits = IngestSettings()
    batch = admit(records_from_python(_records(now_ms() - 5000), limits), VEHICLE, limits)
    short = msgspec.structs.replace(batch, values=batch.values[:-1]).encode()
    with pytest.raises(BatchFormatError, match=r"record columns have unequal lengths \(\[6, 7\]\)"):
        decode(short)


# -- the serialised path stores what the direct path stores ----------------------------------------------------


def _opened_rows(rt: Runtime) -> list[dict[str, Any]]:
    region = rt.regions["cn"]
    with region.store.read("test") as conn:
        raw = [dict(r._mapping) for r in conn.execute(records.select().order_by(records.c.msg_id))]
    assert raw, "nothing was stored"
    return [{k: v for k, v in row.items() if k != "id"} for row in region.open_rows(raw)]


def _twin_runtimes(tmp_path: Path) -> tuple[Runtime, Runtime, Vehicle]:
    first = tmp_path / "direct"
    config, _ = init_workspace(first)
    setup = Runtime(load_settings(config, env={}), create=True)
    try:
        vehicle = setup.vehicles.add(CN_VIN, "CN").vehicle
        owner = setup.vehicles.owner_of(CN_VIN, "CN")
        setup.consents.grant(owner, "navigation", "separate", "7d", actor_role="officer")
    finally:
        setup.close()
    shutil.copytree(first, tmp_path / "serialised")
    direct = Runtime(load_settings(config, env={}))
    serialised = Runtime(load_settings(tmp_path / "serialised" / config.name, env={}))
    serialised.bus.serialise = True  # every batch, signals and frames, is encoded and decoded on its way
    return direct, serialised, vehicle


def test_a_serialised_batch_stores_exactly_the_rows_of_the_direct_path(tmp_path: Path) -> None:
    direct, serialised, vehicle = _twin_runtimes(tmp_path)
    street = encode_frame(build_street_frame()[0], "image/png")
    at = now_ms()
    try:
        answers = []
        twins = (direct, serialised)
        for rt in twins:
            signals = rt.ingest.ingest_records(vehicle, _records(at - 5000), now_ms=at)
            plain = rt.frames.ingest(vehicle, noise_jpeg(), FrameMeta("f-1", "front", at - 1000), now_ms=at)
            found = rt.frames.ingest(vehicle, street, FrameMeta("f-2", "front", at - 900), now_ms=at)
            zone = FrameMeta("f-3", "front", at - 800, ZONE_POINT["latitude"], ZONE_POINT["longitude"])
            dropped = rt.frames.ingest(vehicle, noise_jpeg(2), zone, now_ms=at)
            answers.append((signals, plain.to_dict(), found.to_dict(), dropped.to_dict()))
        assert answers[0] == answers[1]
        signals, plain, found, dropped = answers[0]
        assert signals.accepted == 5 and signals.dropped_no_consent == 2 and signals.zone_hits == 1
        assert plain["categories"] == ["general"] and found["categories"] == ["important", "personal"]
        assert dropped["dropped"] == "sensitive_zone"
        rows = _opened_rows(direct)
        assert rows == _opened_rows(serialised)
        assert len(rows) == 7 and {r["signal"] for r in rows} >= {"CameraFrame", "Location", "VehicleSpeed"}
        # the same anonymised images, and the same collect events in the ledgers
        blobs = [sorted(p.read_bytes() for p in rt.regions["cn"].blobs.root.rglob("*.*g")) for rt in twins]
        assert blobs[0] == blobs[1] and len(blobs[0]) == 2
        collects = [[e for e in ledger_events_of(rt.regions["cn"], 0) if e["kind"] == "collect"] for rt in twins]
        assert collects[0] == collects[1] and len(collects[0]) == 4
    finally:
        direct.close()
        serialised.close()


# -- frames take the minimise stage ------------------------------------------------------------------------------


def _no_exemption(raw: dict[str, Any]) -> None:
    for rule in raw["frames"]["cameras"]:
        rule["consent_exempt"] = False


def test_a_frame_without_the_needed_consent_is_dropped_by_the_minimise_stage(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the external camera rule not exempt, a frame in which faces and plates were found needs consent
    (it is personal); the minimise stage, the one signals take, drops it and the drop is counted as before."""
    seen: list[tuple[ClassifiedBatch, StoredRows]] = []
    real = process.minimize

    def spy(classified: ClassifiedBatch, *args: Any) -> StoredRows:
        out = real(classified, *args)
        seen.append((classified, out))
        return out

    monkeypatch.setattr(process, "minimize", spy)
    rt = runtime_with_pack(workspace, _no_exemption)
    try:
        vehicle = rt.vehicles.add(CN_VIN, "CN").vehicle
        street = encode_frame(build_street_frame()[0], "image/png")
        result = rt.frames.ingest(vehicle, street, FrameMeta("f-1", "front", now_ms() - 1000))
        assert result.dropped == "no_consent" and not result.stored
        [(classified, out)] = seen
        assert classified.batch.signals == ["CameraFrame"] and classified.categories == [("important", "personal")]
        assert len(out.records) == 0 and out.dropped_no_consent == 1 and out.dropped_by_purpose == {"driving_safety": 1}
        assert frame_rows(workspace) == [] and not list(rt.regions["cn"].blobs.root.rglob("*.png"))
        assert ledger_events(workspace)[-1]["counts"] == {"frames_received": 1, "frames_dropped_no_consent": 1}
        assert rt.frames.stats(rt.regions["cn"])["dropped"] == {"no_consent": 1}
        # with consent the same frame is collected, through the same stage, into the one row minimise built
        owner = rt.vehicles.owner_of(CN_VIN, "CN")
        rt.consents.grant(owner, "driving_safety", "ordinary", "7d", actor_role="subject")
        assert rt.frames.ingest(vehicle, street, FrameMeta("f-2", "front", now_ms() - 1000)).stored
        [row] = frame_rows(workspace)
        assert len(seen) == 2 and len(seen[1][1].records) == 1 and row["subject_ref"] == owner
    finally:
        rt.close()
