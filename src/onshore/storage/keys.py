"""Region key stores: one interface, two backends; keys are held inside their region and never leave it.

A region's key store holds its *named keys* (the pseudonym key, the key-encryption key (KEK), the border's
pseudonym key, the ledger's signing seeds) and its *wrapped subject data keys* (one per subject, wrapped by the
KEK; destroying one is erasure by crypto-shredding). Backends:

- ``file://folder`` (`FolderKeyStore`, embedded): named keys as files (mode 0600), subject keys in
  ``subject-keys.sqlite`` with ``secure_delete``. For one machine; a missing named key is created on first use.
- a database URL (`onshore.storage.keys_sql.SQLKeyStore`, shared): PostgreSQL (or SQLite) database apart from the
  record store, reached by every process of the region. Keys are provisioned explicitly
  (``onshore keys provision``); a missing named key raises `KeyNotProvisionedError`.

In both, ``ONSHORE_KEY_<REGION>_<NAME>`` (hex) overrides a named key: how a deployment injects the KEK from an
in-country KMS or secret manager, so the key store then holds only wrapped keys.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from onshore.errors import ConfigError, KeyNotProvisionedError, StorageError
from onshore.storage.blobs import folder_from_url
from onshore.storage.crypto import KEK_NAME, SubjectKeyFile

PSEUDONYM_KEY = "pseudonym"
# Every named key a region needs, provisioned together. The border's and the ledger's names are spelled here
# (storage imports no feature package); tests/storage/test_keys.py checks they match theirs.
REGION_KEYS = (PSEUDONYM_KEY, KEK_NAME, "border-pseudonym", "ledger-signing-v1")
KEY_SIZE = 32

KeyState = Literal["present", "env", "missing"]
ProvisionAction = Literal["created", "present", "env"]

_KEY_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


class KeyStore(Protocol):
    """A region's named keys and its wrapped subject data keys."""

    region: str
    backend: str  # "folder" or "sql", for status output

    def key(self, name: str) -> bytes:
        """The named key (env override first; may be cached, named keys never change).

        Raises:
            KeyNotProvisionedError: the key is absent and this backend does not create keys on first use.
        """
        ...

    def ensure(self, name: str) -> bytes:
        """The named key, created now if absent; never replaces one (provisioning, ledger key rotation)."""
        ...

    def provision(self, names: Sequence[str] = REGION_KEYS) -> dict[str, ProvisionAction]:
        """Create the key tables and every missing key of ``names``; idempotent; never replaces a key."""
        ...

    def status(self, names: Sequence[str] = REGION_KEYS) -> dict[str, KeyState]:
        """Where each named key comes from: ``present`` (in the store), ``env`` or ``missing``. Never bytes."""
        ...

    def keys_for(self, subject_refs: Iterable[str], *, create: bool) -> dict[str, bytes]:
        """Unwrapped data keys of ``subject_refs``, read from the store on every call (no cache, so an erasure
        in another process is seen at once); missing ones are created when ``create``, else absent."""
        ...

    def destroy(self, subject_ref: str) -> bool:
        """Destroy the subject's data key; True when there was one."""
        ...

    def exists(self, subject_ref: str) -> bool:
        """Whether the subject has a data key."""
        ...

    def subject_key_count(self) -> int:
        """How many subject data keys the store holds (0 when its tables do not exist yet)."""
        ...

    def close(self) -> None: ...


def check_key_name(name: str) -> None:
    if not _KEY_NAME.match(name):
        raise ValueError(f"key name {name!r} is invalid")


def env_key_name(region: str, name: str) -> str:
    """The environment variable that overrides a named key: ``ONSHORE_KEY_<REGION>_<NAME>``."""
    return f"ONSHORE_KEY_{region}_{name}".upper().replace("-", "_")


def env_key(region: str, name: str) -> bytes | None:
    """The named key from its environment override, or None.

    Raises:
        ConfigError: the variable is set but not hex.
    """
    var = env_key_name(region, name)
    value = os.environ.get(var)
    if not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{var} must be hex") from None


def named_key(cache: dict[str, bytes], region: str, name: str, load: Callable[[str], bytes]) -> bytes:
    """A named key of ``region``: from ``cache``, else its environment override, else ``load(name)``; cached.

    Both backends read named keys this way (only ``load`` differs: the folder creates a missing file, the shared
    store refuses a key that was not provisioned).
    """
    check_key_name(name)
    cached = cache.get(name)
    if cached is not None:
        return cached
    key = env_key(region, name)
    if key is None:
        key = load(name)
    cache[name] = key
    return key


def provision_hint(config_file: Path | None, region: str) -> str:
    """The command that provisions ``region``'s keys, for error messages."""
    config = f" -c {config_file}" if config_file is not None else ""
    return f"onshore keys provision{config} --region {region}"


def not_provisioned(region: str, name: str | None, hint: str) -> KeyNotProvisionedError:
    """The error for a named key (or, with ``name`` None, the key tables) missing from a shared key store."""
    what = "the key store's tables are" if name is None else f"key {name!r} is"
    return KeyNotProvisionedError(
        f"region {region}: {what} not provisioned in the key store; run `{hint}`",
        details={"region": region, "key": name, "command": hint},
    )


class FolderKeyStore:
    """The embedded backend: named keys as files (mode 0600) in a folder, subject keys in a SQLite file there.

    A missing named key is created on first use (atomically: of two processes creating it at once, one wins
    and both read its key), so embedded workspaces made before `onshore keys provision` existed keep working;
    the folder is on one machine, so no other machine can make a different key.
    """

    backend = "folder"

    def __init__(self, folder: Path, *, region: str) -> None:
        self.folder = folder
        self.region = region
        self._cache: dict[str, bytes] = {}
        self._subjects: SubjectKeyFile | None = None
        self._lock = threading.Lock()

    def key(self, name: str) -> bytes:
        return self.ensure(name)

    def ensure(self, name: str) -> bytes:
        return named_key(self._cache, self.region, name, self._load_or_create_file)

    def provision(self, names: Sequence[str] = REGION_KEYS) -> dict[str, ProvisionAction]:
        done: dict[str, ProvisionAction] = {}
        for name, state in self.status(names).items():
            if state == "missing":
                self.ensure(name)
            done[name] = "created" if state == "missing" else state
        self._subject_file()  # the wrapped-key file exists from now on
        return done

    def status(self, names: Sequence[str] = REGION_KEYS) -> dict[str, KeyState]:
        states: dict[str, KeyState] = {}
        for name in names:
            check_key_name(name)
            if env_key(self.region, name) is not None:
                states[name] = "env"
            else:
                states[name] = "present" if (self.folder / f"{name}.key").exists() else "missing"
        return states

    def keys_for(self, subject_refs: Iterable[str], *, create: bool) -> dict[str, bytes]:
        return self._subject_file().keys_for(subject_refs, create=create)

    def destroy(self, subject_ref: str) -> bool:
        return self._subject_file().destroy(subject_ref)

    def exists(self, subject_ref: str) -> bool:
        return self._subject_file().exists(subject_ref)

    def subject_key_count(self) -> int:
        if self._subjects is None and not (self.folder / "subject-keys.sqlite").exists():
            return 0
        return self._subject_file().count()

    def close(self) -> None:
        if self._subjects is not None:
            self._subjects.close()
            self._subjects = None

    def _subject_file(self) -> SubjectKeyFile:
        with self._lock:
            if self._subjects is None:
                self._subjects = SubjectKeyFile(self.folder, region=self.region, kek=self.key(KEK_NAME))
            return self._subjects

    def _load_or_create_file(self, name: str) -> bytes:
        path = self.folder / f"{name}.key"
        try:
            if path.exists():
                return bytes.fromhex(path.read_text().strip())
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(KEY_SIZE))
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


def key_store_from_url(
    url: str, *, base_dir: Path, region: str, record_store: str | None = None, config_file: Path | None = None
) -> KeyStore:
    """Build the key store a ``key_store`` setting names: ``file://folder`` or a database URL.

    Raises:
        ConfigError: the URL is neither, or it names the record store's own database (the keys must live
            apart, so that record-store backups hold only ciphertext).
    """
    what = f"regions.{region}.key_store"
    if url.startswith("file://"):
        return FolderKeyStore(folder_from_url(url, base_dir=base_dir, what=what), region=region)
    from onshore.storage.keys_sql import SQLKeyStore, key_engine, same_database

    if record_store is not None and same_database(url, record_store, base_dir=base_dir):
        raise ConfigError(
            f"{what} {url!r} names the record store's database; use a separate database for keys, "
            "so that record-store backups hold only ciphertext"
        )
    engine = key_engine(url, base_dir=base_dir, what=what)
    return SQLKeyStore(engine, region=region, hint=provision_hint(config_file, region))
