"""A region: where onshore stores data, tied to one jurisdiction, with its own stores and keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from onshore.config import RegionSettings, Settings
from onshore.storage.blobs import BlobStore, FolderBlobStore, blob_store_from_url, folder_from_url
from onshore.storage.crypto import KEK_NAME, SubjectKeyStore, decrypt_value, is_encrypted
from onshore.storage.keys import FolderKeyStore, key_store_from_url
from onshore.storage.migrate import require_current, upgrade
from onshore.storage.sql import EventJournal, SQLRecordStore, make_engine
from onshore.storage.subjects import SubjectStore

PSEUDONYM_KEY = "pseudonym"


@dataclass
class Region:
    name: str
    settings: RegionSettings
    store: SQLRecordStore
    keys: FolderKeyStore
    subjects: SubjectStore
    subject_keys: SubjectKeyStore
    blobs: BlobStore  # general use: anonymised frames (a folder or an in-country S3 bucket)
    restricted: FolderBlobStore  # raw frames kept under a pack's raw-frame policy, encrypted, officer-only

    @property
    def jurisdiction(self) -> str:
        return self.settings.jurisdiction

    def pseudonym_key(self) -> bytes:
        return self.keys.get_or_create(PSEUDONYM_KEY)

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
        self.subject_keys.close()


def upgrade_command(settings: Settings) -> str:
    """The command that brings these settings' record stores to head, as an operator types it."""
    return f"onshore db upgrade -c {settings.config_file or 'CONFIG'}"


def open_regions(
    settings: Settings, *, journal: Callable[[str], EventJournal], create: bool = False
) -> dict[str, Region]:
    """Open every configured region's stores.

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
        keys = key_store_from_url(rs.key_store, base_dir=settings.base_dir, region=name)
        subject_keys = SubjectKeyStore(keys.folder, region=name, kek=keys.get_or_create(KEK_NAME))
        restricted = (
            folder_from_url(rs.restricted_store, base_dir=settings.base_dir, what=f"regions.{name}.restricted_store")
            if rs.restricted_store
            else keys.folder.parent / "restricted"
        )
        regions[name] = Region(
            name=name,
            settings=rs,
            store=store,
            keys=keys,
            subjects=SubjectStore(store),
            subject_keys=subject_keys,
            blobs=blob_store_from_url(rs.blob_store, base_dir=settings.base_dir, what=f"regions.{name}.blob_store"),
            restricted=FolderBlobStore(restricted, name=f"regions.{name}.restricted_store"),
        )
    return regions
