"""Blob stores: where a region keeps camera frames (and export bundles), as files under keys.

A key is a relative path of lower-case segments (``frames/<vehicle>/<digest>.jpg``); keys never hold
personal data, so callers build them from pseudonyms and digests. `FolderBlobStore.put` is atomic and
durable: the bytes go to a temporary file in the same folder, are flushed to disk, and are renamed into
place, so a crash leaves either the old blob, the new one, or a stray ``.tmp`` file that `sweep_temporary`
removes, never a half-written blob under its key.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

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
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"blob key {key!r} is not a relative lower-case path")
        return self.root / key

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

    def keys(self, prefix: str = "") -> Iterator[tuple[str, float]]:
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
        cutoff = time.time() - older_than_s
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                path = Path(dirpath) / filename
                with contextlib.suppress(FileNotFoundError):
                    if filename.endswith(_TMP_SUFFIX) and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed
