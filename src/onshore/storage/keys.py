"""Region key stores: keys are created and held inside their region and never leave it."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from onshore.errors import ConfigError, StorageError
from onshore.storage.blobs import folder_from_url

_KEY_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


class KeyStore(Protocol):
    """A region's secret keys, by name."""

    def get_or_create(self, name: str, size: int = 32) -> bytes:
        """The key called ``name``, created with ``size`` random bytes on first use."""
        ...


class FolderKeyStore:
    """Keys as files (mode 0600) in a folder of the region; an env secret may override one.

    ``ONSHORE_KEY_<REGION>_<NAME>`` (hex) takes precedence over the file, so a deployment can inject
    keys from an in-country secret manager without writing them to disk.
    """

    def __init__(self, folder: Path, *, region: str) -> None:
        self.folder = folder
        self.region = region
        self._cache: dict[str, bytes] = {}

    def get_or_create(self, name: str, size: int = 32) -> bytes:
        if not _KEY_NAME.match(name):
            raise ValueError(f"key name {name!r} is invalid")
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        env_name = f"ONSHORE_KEY_{self.region}_{name}".upper().replace("-", "_")
        env_value = os.environ.get(env_name)
        if env_value:
            try:
                key = bytes.fromhex(env_value)
            except ValueError:
                raise ConfigError(f"{env_name} must be hex") from None
        else:
            key = self._load_or_create_file(name, size)
        self._cache[name] = key
        return key

    def _load_or_create_file(self, name: str, size: int) -> bytes:
        path = self.folder / f"{name}.key"
        try:
            if path.exists():
                return bytes.fromhex(path.read_text().strip())
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(size))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic create-if-absent: a concurrent creator wins, we read theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
            return bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise StorageError(f"region {self.region}: key {name!r} unreadable ({exc.__class__.__name__})") from exc


def key_store_from_url(url: str, *, base_dir: Path, region: str) -> FolderKeyStore:
    """Build the key store a ``key_store`` URL names (``file://folder``)."""
    return FolderKeyStore(folder_from_url(url, base_dir=base_dir, what=f"regions.{region}.key_store"), region=region)


def pseudonym(key: bytes, value: str) -> str:
    """A keyed pseudonym: HMAC-SHA-256, hex, truncated to 128 bits; stable within a region."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]
