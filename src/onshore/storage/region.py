"""A region: where onshore stores data, tied to one jurisdiction, with its own stores and keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onshore.config import RegionSettings, Settings
from onshore.storage.blobs import BlobStore, FolderBlobStore, blob_store_from_url, folder_from_url
from onshore.storage.crypto import KEK_NAME, SubjectKeyStore, decrypt_value, is_encrypted
from onshore.storage.keys import FolderKeyStore, key_store_from_url
from onshore.storage.sql import SQLRecordStore, make_engine
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


def open_regions(settings: Settings, *, create: bool = True) -> dict[str, Region]:
    """Open every configured region's stores (creating missing tables when ``create``)."""
    regions: dict[str, Region] = {}
    for name, rs in settings.regions.items():
        engine = make_engine(rs.record_store, base_dir=settings.base_dir, synchronous=rs.sqlite_synchronous)
        store = SQLRecordStore(engine, region=name, jurisdiction=rs.jurisdiction)
        if create:
            store.create_schema()
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
