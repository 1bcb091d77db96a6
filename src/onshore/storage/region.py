"""A region: where onshore stores data, tied to one jurisdiction, with its own stores and keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onshore.config import RegionSettings, Settings
from onshore.errors import ConfigError
from onshore.storage.blobs import BlobStore, FolderBlobStore, blob_store_from_url, folder_from_url
from onshore.storage.crypto import decrypt_value, is_encrypted
from onshore.storage.engine import make_engine
from onshore.storage.keys import PSEUDONYM_KEY, FolderKeyStore, KeyStore, key_store_from_url
from onshore.storage.migrate import require_current, upgrade
from onshore.storage.sql import EventJournal, SQLRecordStore
from onshore.storage.subjects import SubjectStore


@dataclass
class Region:
    name: str
    settings: RegionSettings
    store: SQLRecordStore
    keys: KeyStore  # named keys and wrapped subject data keys (a folder, or the region's shared key database)
    subjects: SubjectStore
    blobs: BlobStore  # general use: anonymised frames (a folder or an in-country S3 bucket)
    restricted: FolderBlobStore  # raw frames kept under a pack's raw-frame policy, encrypted, officer-only

    @property
    def jurisdiction(self) -> str:
        return self.settings.jurisdiction

    @property
    def subject_keys(self) -> KeyStore:
        """The store of subjects' data keys: the region's key store."""
        return self.keys

    def pseudonym_key(self) -> bytes:
        return self.keys.key(PSEUDONYM_KEY)

    def open_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Decrypt the values of personal rows in place; a row whose subject's key is destroyed reads as null."""
        subjects = {r["subject_ref"] for r in rows if is_encrypted(r["value"])}
        keys = self.subject_keys.keys_for(subjects, create=False) if subjects else {}
        for row in rows:
            if is_encrypted(row["value"]):
                key = keys.get(row["subject_ref"])
                row["value"] = (
                    None
                    if key is None
                    else decrypt_value(key, self.name, row["vehicle_ref"], row["msg_id"], row["value"])
                )
        return rows

    def close(self) -> None:
        self.store.dispose()
        self.keys.close()


def upgrade_command(settings: Settings) -> str:
    """The command that brings these settings' record stores to head, as an operator types it."""
    return f"onshore db upgrade -c {settings.config_file or 'CONFIG'}"


def open_regions(
    settings: Settings,
    *,
    journal: Callable[[str], EventJournal],
    create: bool = False,
    only: Sequence[str] | None = None,
) -> dict[str, Region]:
    """Open every configured region's stores (or those named in ``only``: a worker opens its own region's).

    Args:
        journal: makes a region's event journal from its name (the runtime passes the ledger's ``MerkleLog``).
        create: bring each record store to the head revision first (what `onshore init`, the demo, test
            workspaces and benches do for a new store); otherwise a store not at head is refused.

    Raises:
        SchemaVersionError: without ``create``, a record store is not at this onshore's head revision; the
            message names `onshore db upgrade`.
        StorageError: a record store cannot be reached or upgraded.
    """
    regions: dict[str, Region] = {}
    for name, rs in settings.regions.items():
        if only is not None and name not in only:
            continue
        engine = make_engine(rs.record_store, base_dir=settings.base_dir, synchronous=rs.sqlite_synchronous)
        try:
            if create:
                upgrade(engine, region=name)
            else:
                require_current(engine, region=name, upgrade_command=upgrade_command(settings))
        except BaseException:
            engine.dispose()
            for opened in regions.values():
                opened.close()
            raise
        store = SQLRecordStore(engine, region=name, jurisdiction=rs.jurisdiction, journal=journal(name))
        keys = region_key_store(settings, name)
        restricted = _restricted_folder(settings, name, keys)
        regions[name] = Region(
            name=name,
            settings=rs,
            store=store,
            keys=keys,
            subjects=SubjectStore(store),
            blobs=blob_store_from_url(rs.blob_store, base_dir=settings.base_dir, what=f"regions.{name}.blob_store"),
            restricted=FolderBlobStore(restricted, name=f"regions.{name}.restricted_store"),
        )
    return regions


def region_key_store(settings: Settings, name: str) -> KeyStore:
    """The key store of region ``name`` (opened; nothing is created until used or provisioned)."""
    rs = settings.regions[name]
    return key_store_from_url(
        rs.key_store,
        base_dir=settings.base_dir,
        region=name,
        record_store=rs.record_store,
        config_file=settings.config_file,
    )


def _restricted_folder(settings: Settings, name: str, keys: KeyStore) -> Path:
    rs = settings.regions[name]
    if rs.restricted_store:
        return folder_from_url(rs.restricted_store, base_dir=settings.base_dir, what=f"regions.{name}.restricted_store")
    if isinstance(keys, FolderKeyStore):
        return keys.folder.parent / "restricted"
    raise ConfigError(
        f"regions.{name}.restricted_store is not set: with a database key_store there is no key folder to put "
        "raw frames beside; set it to a file:// folder"
    )
