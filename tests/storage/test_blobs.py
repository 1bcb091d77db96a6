"""Blob stores, one suite for both: a folder (embedded) and a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.errors import ConfigError, NotFoundError
from onshore.storage.blobs import BlobStore, FolderBlobStore, S3BlobStore, blob_store_from_url
from tests.conftest import S3Server


@pytest.fixture(params=["folder", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "folder":
        yield blob_store_from_url("file://blobs", base_dir=tmp_path, what="regions.cn.blob_store")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        yield blob_store_from_url(server.url() + "&region=cn-north-1", base_dir=tmp_path, what="regions.cn.blob_store")


def test_put_get_exists_delete_and_list(blobs: BlobStore) -> None:
    blobs.put("frames/v1/a.jpg", b"first")
    blobs.put("frames/v1/a.jpg", b"second")  # replaced, not duplicated
    blobs.put("frames/v2/b.png", b"\x89PNG")
    blobs.put("raw/v1/c.sealed", b"sealed")
    assert blobs.get("frames/v1/a.jpg") == b"second" and blobs.exists("frames/v2/b.png")
    listed = dict(blobs.entries("frames/"))
    assert sorted(listed) == ["frames/v1/a.jpg", "frames/v2/b.png"]
    assert all(abs(modified - time.time()) < 300 for modified in listed.values())
    assert blobs.delete("frames/v1/a.jpg") and not blobs.delete("frames/v1/a.jpg")
    assert not blobs.exists("frames/v1/a.jpg")
    with pytest.raises(NotFoundError) as missing:
        blobs.get("frames/v1/a.jpg")
    assert "v1" not in missing.value.message  # errors never echo keys
    assert sorted(dict(blobs.entries())) == ["frames/v2/b.png", "raw/v1/c.sealed"]


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "Upper/case", "a//b", ""])
def test_keys_outside_the_store_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        blobs.put(key, b"x")


def test_folder_writes_are_atomic_and_crashed_writes_are_swept(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "b", name="test")
    store.put("frames/v/a.jpg", b"data")
    leftover = tmp_path / "b" / "frames" / "v" / "a.jpg.123.456.tmp"  # what a crash mid-write leaves
    leftover.write_bytes(b"da")
    assert [k for k, _ in store.entries()] == ["frames/v/a.jpg"]  # never listed as a blob
    assert store.sweep_temporary(older_than_s=3600) == 0  # too young: might still be in flight
    assert store.sweep_temporary(older_than_s=-1) == 1 and not leftover.exists()
    assert store.get("frames/v/a.jpg") == b"data"


@pytest.mark.parametrize("url", ["gs://bucket", "s3://", "s3://bucket?endpoint=http://x&secret=y", "ftp://host/folder"])
def test_bad_blob_store_urls_are_config_errors(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as error:
        blob_store_from_url(url, base_dir=tmp_path, what="regions.cn.blob_store")
    assert "regions.cn.blob_store" in error.value.message


def test_s3_store_keeps_its_prefix(s3_server: S3Server) -> None:
    run = secrets.token_hex(4)
    a = S3BlobStore(s3_server.bucket, prefix=f"{run}/cn/", endpoint=s3_server.endpoint, name="a")
    b = S3BlobStore(s3_server.bucket, prefix=f"{run}/eu/", endpoint=s3_server.endpoint, name="b")
    a.put("frames/x.jpg", b"cn")
    b.put("frames/x.jpg", b"eu")
    assert a.get("frames/x.jpg") == b"cn" and b.get("frames/x.jpg") == b"eu"
    assert [k for k, _ in a.entries()] == ["frames/x.jpg"] and a.sweep_temporary() == 0
