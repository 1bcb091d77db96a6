"""Blob stores: where a region keeps camera frames, as objects under keys.

A key is a relative path of lower-case segments (``frames/<vehicle>/<digest>.jpg``); keys never hold
personal data, so callers build them from pseudonyms and digests. Two stores, one interface (`BlobStore`):

- `FolderBlobStore` (``file://folder``, the embedded default): `put` is atomic and durable — the bytes go to a
  temporary file in the same folder, are flushed to disk and renamed into place, so a crash leaves the old
  blob, the new one, or a stray ``.tmp`` file that `sweep_temporary` removes, never a half-written blob;
- `S3BlobStore` (``s3://bucket[/prefix]?endpoint=URL&region=NAME``, distributed mode): any S3-compatible
  server in the region's country (SeaweedFS, MinIO, a cloud's in-country S3); a PUT is atomic by the protocol.
  Credentials come from the usual AWS environment variables or files, never from onshore's config.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from onshore import clock
from onshore.errors import ConfigError, NotFoundError, StorageError

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.\-]*(/[a-z0-9][a-z0-9_.\-]*)*$")
_TMP_SUFFIX = ".tmp"


def folder_from_url(url: str, *, base_dir: Path, what: str) -> Path:
    """The folder a ``file://`` URL names; relative folders are resolved against ``base_dir``.

    Raises:
        ConfigError: another scheme (the message names the setting ``what``).
    """
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ConfigError(f"{what} {url!r}: only file:// folders are supported")
    folder = Path(parsed.netloc + parsed.path)
    return folder if folder.is_absolute() else base_dir / folder


class BlobStore(Protocol):
    """What the frame path needs from a region's blob store."""

    name: str

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def entries(self, prefix: str = "") -> Iterator[tuple[str, float]]: ...
    def sweep_temporary(self, older_than_s: float = 3600) -> int: ...


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"blob key {key!r} is not a relative lower-case path")
    return key


class FolderBlobStore:
    """Blobs as files under ``root``; created on first write.

    Args:
        root: the folder.
        name: how errors name the store (a setting name, never a path with personal data).
    """

    def __init__(self, root: Path, *, name: str) -> None:
        self.root = root
        self.name = name

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically and durably (replacing an existing blob)."""
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}{_TMP_SUFFIX}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"blob store {self.name}: cannot write a blob ({exc.__class__.__name__})") from exc

    def get(self, key: str) -> bytes:
        """The bytes under ``key``.

        Raises:
            NotFoundError: no blob has that key.
            StorageError: the blob exists but cannot be read.
        """
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob store {self.name}: no blob under that key") from None
        except OSError as exc:
            raise StorageError(f"blob store {self.name}: cannot read a blob ({exc.__class__.__name__})") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove the blob under ``key``; False when there was none."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"blob store {self.name}: cannot delete a blob ({exc.__class__.__name__})") from exc
        return True

    def entries(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        """``(key, modified_epoch_s)`` of every blob whose key starts with ``prefix`` (temporary files skipped)."""
        if not self.root.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                if filename.endswith(_TMP_SUFFIX):
                    continue
                path = Path(dirpath) / filename
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        yield key, path.stat().st_mtime

    def sweep_temporary(self, older_than_s: float = 3600) -> int:
        """Delete temporary files left by writes that crashed more than ``older_than_s`` ago."""
        if not self.root.is_dir():
            return 0
        cutoff = clock.now_ms() / 1000 - older_than_s
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                path = Path(dirpath) / filename
                with contextlib.suppress(FileNotFoundError):
                    if filename.endswith(_TMP_SUFFIX) and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed


class S3BlobStore:
    """Blobs as objects of an S3 bucket (under an optional key prefix), through boto3.

    Args:
        bucket: the bucket; created when ``create`` and missing.
        prefix: prepended to every key (``""`` or ``"path/"``).
        endpoint: the S3 server's URL (None: AWS's own endpoints).
        region: the S3 region name (signing only).
        name: how errors name the store (the setting).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        name: str,
        create: bool = True,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.name = name
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )
        if create:
            with self._errors("open the bucket"):
                try:
                    self._client.head_bucket(Bucket=bucket)
                except self._client.exceptions.ClientError as exc:
                    if _status(exc) != 404:
                        raise
                    self._client.create_bucket(Bucket=bucket)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"blob store {self.name}: cannot {what} ({exc.__class__.__name__})") from exc

    def put(self, key: str, data: bytes) -> None:
        with self._errors("write a blob"):
            self._client.put_object(Bucket=self.bucket, Key=self.prefix + _check_key(key), Body=data)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        with self._errors("read a blob"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + _check_key(key))
            except ClientError as exc:
                if _status(exc) == 404:
                    raise NotFoundError(f"blob store {self.name}: no blob under that key") from None
                raise
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._errors("look up a blob"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self.prefix + _check_key(key))
            except ClientError as exc:
                if _status(exc) == 404:
                    return False
                raise
        return True

    def delete(self, key: str) -> bool:
        """Remove the object under ``key``; False when there was none."""
        if not self.exists(key):
            return False
        with self._errors("delete a blob"):
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + _check_key(key))
        return True

    def entries(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        with self._errors("list blobs"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :], item["LastModified"].timestamp()

    def sweep_temporary(self, older_than_s: float = 3600) -> int:
        """Nothing to sweep: an S3 PUT never leaves a partial object."""
        return 0


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def blob_store_from_url(url: str, *, base_dir: Path, what: str) -> FolderBlobStore | S3BlobStore:
    """The blob store a ``blob_store`` URL names: ``file://folder`` or ``s3://bucket[/prefix]?endpoint=&region=``.

    Raises:
        ConfigError: another scheme, or an S3 URL without a bucket or with unknown parameters.
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        params = parse_qs(parsed.query)
        unknown = sorted(set(params) - {"endpoint", "region"})
        if not parsed.netloc or unknown:
            raise ConfigError(
                f"{what} {url!r}: write s3://bucket[/prefix][?endpoint=URL&region=NAME]"
                + (f" (unknown parameters: {', '.join(unknown)})" if unknown else "")
            )
        prefix = parsed.path.strip("/")
        return S3BlobStore(
            parsed.netloc,
            prefix=f"{prefix}/" if prefix else "",
            endpoint=params.get("endpoint", [None])[0],
            region=params.get("region", [None])[0],
            name=what,
        )
    if parsed.scheme != "file":
        raise ConfigError(f"{what} {url!r}: use file://folder or s3://bucket[/prefix]?endpoint=URL")
    return FolderBlobStore(folder_from_url(url, base_dir=base_dir, what=what), name=what)
