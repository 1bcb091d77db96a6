"""Frame ingest end to end: POST /v1/frames → classify → anonymise → region blob store → ledger.

Frames are built in memory (shared evaluation photos composited, or synthetic noise); the VINs are the
synthetic ones of conftest. Nothing here carries personal data of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

from onshore.border.requests import parse_request
from onshore.config import load_settings
from onshore.errors import StorageError
from onshore.ledger import MerkleLog
from onshore.ledger.event_check import event_problems
from onshore.rules.loader import BUILTIN_PACKS_DIR
from onshore.runtime import Runtime
from onshore.storage.schema import records
from onshore.vision.codec import decode_frame, encode_frame
from onshore.vision.ingest import POSITION_HEADER, FrameMeta
from onshore.web.app import create_app
from tests.border.helpers import ZONE_POINT, basis
from tests.conftest import CN_VIN, Workspace, auth, fresh_pg_database, now_ms
from tests.vision.test_anonymized_frames import assert_hidden_and_rest_kept, build_street_frame


@pytest.fixture(scope="module")
def street() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]], bytes]:
    frame, known = build_street_frame()
    return frame, known, encode_frame(frame, "image/png")


def noise_jpeg(seed: int = 1, width: int = 320, height: int = 240) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (9, 9), 3)
    return encode_frame(image, "image/jpeg")


def post_frame(
    client: TestClient,
    token: str,
    data: bytes,
    *,
    media: str = "image/jpeg",
    position: str | None = None,
    **params: Any,
) -> Any:
    query = {"msg_id": "f-1", "camera": "front", "ts": str(now_ms() - 1000), **params}
    query = {k: v for k, v in query.items() if v is not None}
    headers = {**auth(token), "Content-Type": media}
    if position is not None:
        headers[POSITION_HEADER] = position
    return client.post("/v1/frames", params=query, content=data, headers=headers)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def frame_rows(ws: Workspace) -> list[dict[str, Any]]:
    with ws.runtime.regions["cn"].store.read("test") as conn:
        return [dict(r._mapping) for r in conn.execute(records.select().where(records.c.signal == "CameraFrame"))]


def ledger_events(ws: Workspace, first: int = 0) -> list[dict[str, Any]]:
    return ledger_events_of(ws.runtime.regions["cn"], first)


def ledger_size(region: Any) -> int:
    with region.store.read("test") as conn:
        return MerkleLog(region.name).tree_size(conn)


def ledger_events_of(region: Any, first: int) -> list[dict[str, Any]]:
    log = MerkleLog(region.name)
    with region.store.read("test") as conn:
        return [orjson.loads(e) for e in log.entries(conn, first, log.tree_size(conn))]


def runtime_with_pack(ws: Workspace, edit: Any) -> Runtime:
    """A runtime over the same workspace whose cn pack is a copy of cn-auto changed by ``edit(dict)``."""
    raw = yaml.safe_load((BUILTIN_PACKS_DIR / "cn-auto.yaml").read_text(encoding="utf-8"))
    for zone in raw["zones"]:
        zone["file"] = str(BUILTIN_PACKS_DIR / zone["file"])
    edit(raw)
    path = ws.folder / "cn-custom.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    settings = load_settings(ws.config, env={"ONSHORE_RULES__PACKS": f'["{path}", "eu-gdpr"]'})
    return Runtime(settings)


def test_a_frame_with_a_known_plate_and_face_is_stored_anonymised(workspace: Workspace, client: TestClient, street):
    frame, known, png = street
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    response = post_frame(client, issued.token, png, media="image/png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] and not body["duplicate"] and body["dropped"] is None
    assert body["rule_id"] == "cn.frame.external" and body["categories"] == ["important", "personal"]
    assert body["faces"] >= 1 and body["plates"] >= 1 and body["raw_kept"] is False
    # stored for general use: the anonymised frame, with both known regions hidden and the rest intact
    got = client.get(f"/v1/frames/cn/{issued.vehicle.ref}/f-1", headers=auth(workspace.token("officer")))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert_hidden_and_rest_kept(frame, decode_frame(got.content)[0], known)
    [blob] = files_under(workspace.runtime.regions["cn"].blobs.root / "frames")
    assert blob.read_bytes() == got.content and png not in blob.read_bytes()
    assert files_under(workspace.runtime.regions["cn"].restricted.root) == []  # raw dropped by default
    # the record holds counts, never crops; its value is encrypted at rest (personal), categories are plain
    [row] = frame_rows(workspace)
    assert row["categories"] == "important,personal" and row["tags"] == "external_image"
    assert row["value"].startswith("e1:")
    value = orjson.loads(workspace.runtime.regions["cn"].open_rows([row])[0]["value"])
    assert value["anonymised"] is True and value["frame"] is True and value["faces"] == body["faces"]
    assert issued.vehicle.ref not in row["value"] + orjson.dumps(value).decode()  # no blob key, no pseudonym
    # the ledger holds the collect and store events, with counts and no personal data
    events = ledger_events(workspace)
    collect = [e for e in events if e["kind"] == "collect"][-1]
    assert collect["counts"]["frames_received"] == 1 and collect["counts"]["faces"] == body["faces"]
    assert all(not event_problems(orjson.dumps(e), "cn")[1] for e in events)


def test_a_resent_frame_is_a_duplicate_and_nothing_is_stored_twice(workspace: Workspace, client: TestClient):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    first = post_frame(client, issued.token, noise_jpeg()).json()
    again = post_frame(client, issued.token, noise_jpeg()).json()
    assert first["stored"] and not first["duplicate"]
    assert again["duplicate"] and not again["stored"]
    assert len(frame_rows(workspace)) == 1
    assert len(files_under(workspace.runtime.regions["cn"].blobs.root / "frames")) == 1


def test_an_external_frame_without_faces_or_plates_is_general(workspace: Workspace, client: TestClient):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    body = post_frame(client, issued.token, noise_jpeg()).json()
    assert body["stored"] and body["faces"] == 0 and body["plates"] == 0 and body["categories"] == ["general"]
    [row] = frame_rows(workspace)
    assert not row["value"].startswith("e1:")  # general data is not encrypted under a subject key


def _png(width: int, height: int, idat: bytes | None = None) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\x00" * (width * 3 + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


BAD_UPLOADS = {
    "empty": (b"", "image/jpeg", 422),
    "truncated jpeg": (noise_jpeg()[:-400], "image/jpeg", 422),
    "corrupt jpeg": (b"\xff\xd8\xff\xe0" + b"\x00\x01" + b"junk" * 50, "image/jpeg", 422),
    "zero-size png": (_png(0, 10), "image/png", 422),
    "corrupt png pixels": (_png(64, 64, idat=b"not zlib at all"), "image/png", 422),
    "pixel bomb": (_png(50_000, 50_000), "image/png", 413),
    "text as jpeg": (b"hello, this is not an image", "image/jpeg", 415),
    "wrong content type": (noise_jpeg(), "application/octet-stream", 415),
    "no content type": (noise_jpeg(), "", 415),
}


@pytest.mark.one_backend
@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_uploads_are_4xx_and_store_nothing(workspace: Workspace, client: TestClient, name: str):
    data, media, status = BAD_UPLOADS[name]
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    before = ledger_size(workspace.runtime.regions["cn"])
    response = post_frame(client, issued.token, data, media=media)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "hello" not in error["message"]
    assert frame_rows(workspace) == []
    assert files_under(workspace.runtime.regions["cn"].blobs.root) == []
    assert ledger_size(workspace.runtime.regions["cn"]) == before


def test_an_upload_over_the_byte_limit_is_413_before_it_is_read(workspace: Workspace, client: TestClient):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    huge = b"\xff\xd8\xff" + b"\x00" * workspace.settings.frames.max_bytes
    response = post_frame(client, issued.token, huge)
    assert response.status_code == 413 and "frames.max_bytes" in response.json()["error"]["message"]
    assert frame_rows(workspace) == [] and files_under(workspace.runtime.regions["cn"].blobs.root) == []


@pytest.mark.one_backend
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"camera": None}, "camera"),
        ({"camera": "Front Camera"}, "camera"),
        ({"msg_id": "bad id with spaces"}, "msg_id"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "946684799999"}, "ts"),
        ({"lat": "26.6", "lon": "106.7"}, "lat"),  # positions travel in a header, never in the query
        ({"position": "26.6"}, POSITION_HEADER),
        ({"position": "95,106.7"}, POSITION_HEADER),
        ({"position": "26.6,181"}, POSITION_HEADER),
        ({"position": "1e1,106.7"}, POSITION_HEADER),  # decimal degrees only
        ({"position": "nan,1"}, POSITION_HEADER),
        ({"ts": "²³"}, "ts"),  # passes str.isdigit(), not int()
        ({"purpose": "infotainment"}, "purpose"),
        ({"vin": "LSVM0TEST00000001"}, "vin"),
    ],
)
def test_bad_metadata_is_422_naming_the_field(workspace: Workspace, client: TestClient, params, field):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    response = post_frame(client, issued.token, noise_jpeg(), **params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field and "LSVM0TEST" not in response.text
    assert frame_rows(workspace) == []


def test_only_vehicles_upload_and_only_staff_read(workspace: Workspace, client: TestClient):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    assert post_frame(client, workspace.token("officer"), noise_jpeg()).status_code == 403
    assert post_frame(client, "ons_veh_cn_not-a-token", noise_jpeg()).status_code == 401
    post_frame(client, issued.token, noise_jpeg())
    url = f"/v1/frames/cn/{issued.vehicle.ref}/f-1"
    assert client.get(url, headers=auth(workspace.token("analyst-cn"))).status_code == 200
    assert client.get(url, headers=auth(workspace.token("analyst-eu"))).status_code == 403
    assert client.get(url, headers=auth(workspace.token("auditor"))).status_code == 403
    assert client.get(url + "/raw", headers=auth(workspace.token("analyst-cn"))).status_code == 403
    assert client.get(url + "/raw", headers=auth(workspace.token("officer"))).status_code == 404  # raw dropped
    assert (
        client.get(f"/v1/frames/cn/{issued.vehicle.ref}/f-2", headers=auth(workspace.token("officer"))).status_code
        == 404
    )


def test_a_frame_inside_a_sensitive_zone_is_not_stored_and_the_drop_is_logged(
    workspace: Workspace, client: TestClient, street
):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    before = ledger_size(workspace.runtime.regions["cn"])
    zone = f"{ZONE_POINT['latitude']},{ZONE_POINT['longitude']}"
    body = post_frame(client, issued.token, street[2], media="image/png", position=zone).json()
    assert body["dropped"] == "sensitive_zone" and not body["stored"]
    assert frame_rows(workspace) == [] and files_under(workspace.runtime.regions["cn"].blobs.root) == []
    [event] = ledger_events(workspace, before)
    assert event["kind"] == "collect" and event["counts"] == {"frames_received": 1, "frames_dropped_sensitive_zone": 1}
    # outside the zone the same frame is stored
    assert post_frame(client, issued.token, street[2], media="image/png", position="31.23,121.47").json()["stored"]
    # the officer's statistics show both
    stats = client.get("/v1/stats", headers=auth(workspace.token("officer"))).json()["regions"]["cn"]["frames"]
    assert stats["stored"] == 1 and stats["by_rule"] == {"cn.frame.external": 1}
    assert stats["by_category"] == {"important": 1, "personal": 1}
    assert stats["dropped"] == {"sensitive_zone": 1}


def test_a_cabin_frame_needs_separate_consent_and_is_sensitive_biometric(workspace: Workspace, client: TestClient):
    rt = workspace.runtime
    issued = rt.vehicles.add(CN_VIN, "CN")
    refused = post_frame(client, issued.token, noise_jpeg(), camera="cabin").json()
    assert refused["dropped"] == "no_consent" and frame_rows(workspace) == []
    assert files_under(rt.regions["cn"].blobs.root) == []
    owner = rt.vehicles.owner_of(CN_VIN, "CN")
    rt.consents.grant(owner, "driving_safety", "separate", "7d", actor_role="subject")
    body = post_frame(client, issued.token, noise_jpeg(), camera="cabin", msg_id="f-2").json()
    assert body["stored"] and body["rule_id"] == "cn.frame.cabin"
    assert body["categories"] == ["personal", "sensitive_personal"]  # whatever the detector found
    [row] = frame_rows(workspace)
    assert row["tags"] == "cabin_image,biometric" and row["subject_ref"] == owner


def _keep_raw(raw: dict[str, Any]) -> None:
    raw["frames"]["raw"]["keep"] = True


def test_kept_raw_frames_are_sealed_officer_only_and_never_in_general_stores_or_exports(
    workspace: Workspace, tmp_path: Path, street
):
    frame, _known, png = street
    rt = runtime_with_pack(workspace, _keep_raw)
    try:
        with TestClient(create_app(rt)) as client:
            issued = rt.vehicles.add(CN_VIN, "CN")
            owner = rt.vehicles.owner_of(CN_VIN, "CN")
            rt.consents.grant(owner, "driving_safety", "separate", "7d", actor_role="subject")
            body = post_frame(client, issued.token, png, media="image/png").json()
            assert body["stored"] and body["raw_kept"]
            cabin = post_frame(client, issued.token, noise_jpeg(), camera="cabin", msg_id="c-1").json()
            assert cabin["stored"] and cabin["raw_kept"]
            region = rt.regions["cn"]
            # the restricted store holds sealed bytes only, and is not the general blob store
            sealed = files_under(region.restricted.root)
            assert len(sealed) == 2 and all(png not in p.read_bytes() for p in sealed)
            assert not region.restricted.root.is_relative_to(region.blobs.root)
            general = files_under(region.blobs.root)
            assert len(general) == 2 and all(p.read_bytes() != png for p in general)
            url = f"/v1/frames/cn/{issued.vehicle.ref}/f-1"
            before = ledger_size(region)
            raw = client.get(url + "/raw", headers=auth(workspace.token("officer")))
            assert raw.status_code == 200 and raw.content == png
            [query] = ledger_events_of(region, before)
            assert query["kind"] == "query" and query["counts"] == {"raw_frames": 1}
            assert client.get(url + "/raw", headers=auth(workspace.token("analyst-cn"))).status_code == 403
            # an export under an approved assessment carries the anonymised reference, never image bytes
            basis(rt, "cn", "cn-sa-1", "security_assessment", purposes=["driving_safety"])
            now = dt.datetime.now(dt.UTC)
            request = parse_request(
                {
                    "region": "cn",
                    "destination": "DE",
                    "recipient": "acme-gmbh",
                    "purpose": "driving_safety",
                    "since": (now - dt.timedelta(days=1)).isoformat(),
                    "until": (now + dt.timedelta(minutes=5)).isoformat(),
                    "fleet": "all",
                }
            )
            result = rt.border.run(request, tmp_path / "bundle", actor_role="officer", at=now)
            assert result.released
            exported = pq.read_table(tmp_path / "bundle" / "data" / "records.parquet").to_pylist()
            frames = [orjson.loads(r["value"]) for r in exported if r["signal"] == "CameraFrame"]
            assert len(frames) == 1 and frames[0]["anonymised"] is True and frames[0]["camera"] == "front"
            assert all(issued.vehicle.ref not in str(r) for r in exported)  # the region's pseudonym stays home
            for path in files_under(tmp_path / "bundle"):
                content = path.read_bytes()
                assert png[:4096] not in content and all(p.read_bytes()[:64] not in content for p in sealed)
            # the cabin frame never leaves, whatever the basis
            [cabin_class] = [d for d in result.decision.classes if "cabin_image" in d.data_class.tags]
            assert cabin_class.decision == "deny"
            assert any(r.rule == "cn.out.cabin-image" for r in cabin_class.reasons)
            # the driver's access copy names the release that carried their (anonymised) frame record
            bundle = rt.requests.access_bundle(owner, actor_role="subject")
            [transfer] = bundle["summary"]["transfers_abroad"]
            assert transfer["destination"] == "DE" and transfer["recipient"] == "acme-gmbh"
            assert transfer["basis_id"] == "cn-sa-1" and transfer["region"] == "cn"
    finally:
        rt.close()


def test_retention_sweeps_blobs_of_erased_frames_and_expired_raw_frames(workspace: Workspace, street):
    rt = runtime_with_pack(workspace, _keep_raw)
    try:
        issued = rt.vehicles.add(CN_VIN, "CN")
        result = rt.frames.ingest(issued.vehicle, street[2], FrameMeta("f-1", "front", now_ms() - 1000))
        assert result.stored and result.raw_kept
        region = rt.regions["cn"]
        assert rt.frames.sweep(region) == {"frames_removed": 0, "raw_removed": 0, "temporary_removed": 0}
        # eight days on, the raw frame (7-day policy) goes; the anonymised frame stays with its record
        later = now_ms() + 8 * 86_400_000
        swept = [r for r in rt.retention.run(now_ms=later) if r.rule_id == "frames.sweep"]
        assert swept[0].deleted == 1 and files_under(region.restricted.root) == []
        assert len(files_under(region.blobs.root / "frames")) == 1
        # once the record is gone (erased subject), its blob is swept too
        with region.store.transaction("test") as conn:
            conn.execute(records.delete().where(records.c.signal == "CameraFrame"))
        assert rt.frames.sweep(region, now_ms=later)["frames_removed"] == 1
        assert files_under(region.blobs.root / "frames") == []
    finally:
        rt.close()


def test_erasing_the_subject_deletes_their_frames_blobs_at_once(workspace: Workspace, street):
    rt = runtime_with_pack(workspace, _keep_raw)
    try:
        issued = rt.vehicles.add(CN_VIN, "CN")
        owner = rt.vehicles.owner_of(CN_VIN, "CN")
        assert rt.frames.ingest(issued.vehicle, street[2], FrameMeta("f-1", "front", now_ms() - 1000)).stored
        region = rt.regions["cn"]
        assert files_under(region.blobs.root / "frames") and files_under(region.restricted.root)
        report = rt.requests.erase(owner, actor_role="officer")
        assert report.regions["cn"]["blobs_deleted"] == 2 and report.regions["cn"]["records_purged"] == 1
        assert files_under(region.blobs.root / "frames") == [] and files_under(region.restricted.root) == []
    finally:
        rt.close()


def test_a_crash_between_blob_and_commit_loses_nothing_and_the_resend_stores_once(
    workspace: Workspace, street, monkeypatch
):
    rt = workspace.runtime
    issued = rt.vehicles.add(CN_VIN, "CN")
    region = rt.regions["cn"]
    commit = region.store.commit_batch

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("simulated crash before the commit")

    monkeypatch.setattr(region.store, "commit_batch", crash)
    meta = FrameMeta("f-1", "front", now_ms() - 1000)
    with pytest.raises(StorageError):
        rt.frames.ingest(issued.vehicle, street[2], meta)
    assert frame_rows(workspace) == [] and len(files_under(region.blobs.root / "frames")) == 1  # unacknowledged
    monkeypatch.setattr(region.store, "commit_batch", commit)
    assert rt.frames.ingest(issued.vehicle, street[2], meta).stored  # the vehicle resends
    assert rt.frames.ingest(issued.vehicle, street[2], meta).duplicate
    assert len(frame_rows(workspace)) == 1 and len(files_under(region.blobs.root / "frames")) == 1
    later = now_ms() + 2 * 3_600_000
    assert rt.frames.sweep(region, now_ms=later)["frames_removed"] == 0  # the stored frame's blob is live


def test_the_frame_path_on_a_postgresql_record_store(workspace: Workspace, street):
    """Distributed mode: the cn region's records and ledger in PostgreSQL, its frames in the blob folder."""
    with fresh_pg_database() as url:
        settings = load_settings(workspace.config, env={"ONSHORE_REGIONS__CN__RECORD_STORE": url})
        rt = Runtime(settings, create=True)
        try:
            issued = rt.vehicles.add(CN_VIN, "CN")
            meta = FrameMeta("f-1", "front", now_ms() - 1000)
            first = rt.frames.ingest(issued.vehicle, street[2], meta)
            assert first.stored and first.plates >= 1 and first.ledger_index is not None
            assert rt.frames.ingest(issued.vehicle, street[2], meta).duplicate
            image, media_type, row = rt.frames.frame(rt.regions["cn"], issued.vehicle.ref, "f-1")
            assert media_type == "image/png" and row["categories"] == "important,personal"
            assert decode_frame(image)[0].shape == street[0].shape
            zone = FrameMeta("f-2", "front", now_ms() - 1000, ZONE_POINT["latitude"], ZONE_POINT["longitude"])
            assert rt.frames.ingest(issued.vehicle, street[2], zone).dropped == "sensitive_zone"
        finally:
            rt.close()


def test_the_frame_path_on_an_s3_blob_store(workspace: Workspace, street, s3_server):
    """Distributed mode: the cn region's frames in an S3 bucket (SeaweedFS on loopback)."""
    settings = load_settings(workspace.config, env={"ONSHORE_REGIONS__CN__BLOB_STORE": s3_server.url()})
    rt = Runtime(settings)
    try:
        region = rt.regions["cn"]
        issued = rt.vehicles.add(CN_VIN, "CN")
        owner = rt.vehicles.owner_of(CN_VIN, "CN")
        assert rt.frames.ingest(issued.vehicle, street[2], FrameMeta("f-1", "front", now_ms() - 1000)).stored
        [(key, _modified)] = list(region.blobs.entries("frames/"))
        image, media_type, _row = rt.frames.frame(region, issued.vehicle.ref, "f-1")
        assert region.blobs.get(key) == image and media_type == "image/png" and image != street[2]
        assert files_under(workspace.folder / "onshore-data" / "cn" / "blobs" / "frames") == []  # not on disk
        assert rt.requests.erase(owner, actor_role="officer").regions["cn"]["blobs_deleted"] == 1
        assert list(region.blobs.entries("frames/")) == []
    finally:
        rt.close()


def test_uploads_beyond_max_in_flight_get_503_with_retry_after(workspace: Workspace, client: TestClient):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    frames = workspace.runtime.frames
    with contextlib.ExitStack() as held:
        for _ in range(workspace.settings.frames.max_in_flight):
            held.enter_context(frames.slot())  # every place taken by uploads in progress
        response = post_frame(client, issued.token, noise_jpeg())
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json()["error"]["code"] == "busy" and frame_rows(workspace) == []
    assert post_frame(client, issued.token, noise_jpeg()).json()["stored"]  # places free again


def motion_blurred(png: bytes) -> bytes:
    image = decode_frame(png)[0]
    kernel = np.zeros((15, 15), dtype=np.float32)
    kernel[7, :] = 1 / 15
    return encode_frame(cv2.filter2D(image, -1, kernel), "image/png")


def test_a_motion_blurred_frame_is_dropped_where_the_pack_says_so_and_labelled_where_kept(
    workspace: Workspace, client: TestClient, street
):
    issued = workspace.runtime.vehicles.add(CN_VIN, "CN")
    blurred = motion_blurred(street[2])
    body = post_frame(client, issued.token, blurred, media="image/png").json()
    assert body["dropped"] == "hard_conditions" and body["conditions"] == ["blurred"] and not body["stored"]
    assert frame_rows(workspace) == [] and files_under(workspace.runtime.regions["cn"].blobs.root) == []
    assert ledger_events(workspace)[-1]["counts"] == {"frames_received": 1, "frames_dropped_hard_conditions": 1}
    assert post_frame(client, issued.token, street[2], media="image/png", msg_id="f-2").json()["stored"]
    # a blurred cabin frame is kept: the detection floor is a criterion for out-of-vehicle images
    owner = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    workspace.runtime.consents.grant(owner, "driving_safety", "separate", "7d", actor_role="subject")
    cabin = post_frame(client, issued.token, blurred, media="image/png", camera="cabin", msg_id="c-1").json()
    assert cabin["stored"] and cabin["conditions"] == ["blurred"]

    def keep(raw: dict[str, Any]) -> None:
        raw["frames"]["hard_conditions"] = "keep"

    rt = runtime_with_pack(workspace, keep)
    try:
        result = rt.frames.ingest(issued.vehicle, blurred, FrameMeta("f-3", "front", now_ms() - 1000))
        assert result.stored and result.conditions == ["blurred"]
        row = next(r for r in frame_rows(workspace) if r["msg_id"] == "f-3")
        assert orjson.loads(rt.regions["cn"].open_rows([row])[0]["value"])["conditions"] == ["blurred"]
    finally:
        rt.close()
