"""A region: where onshore stores data, tied to one jurisdiction, with its own stores and keys."""

from __future__ import annotations

from dataclasses import dataclass

from onshore.config import RegionSettings, Settings
from onshore.storage.keys import KeyStore, key_store_from_url
from onshore.storage.sql import SQLRecordStore, make_engine

PSEUDONYM_KEY = "pseudonym"


@dataclass
class Region:
    name: str
    settings: RegionSettings
    store: SQLRecordStore
    keys: KeyStore

    @property
    def jurisdiction(self) -> str:
        return self.settings.jurisdiction

    def pseudonym_key(self) -> bytes:
        return self.keys.get_or_create(PSEUDONYM_KEY)


def open_regions(settings: Settings, *, create: bool = True) -> dict[str, Region]:
    """Open every configured region's stores (creating missing tables when ``create``)."""
    regions: dict[str, Region] = {}
    for name, rs in settings.regions.items():
        engine = make_engine(rs.record_store, base_dir=settings.base_dir, synchronous=rs.sqlite_synchronous)
        store = SQLRecordStore(engine, region=name, jurisdiction=rs.jurisdiction)
        if create:
            store.create_schema()
        keys = key_store_from_url(rs.key_store, base_dir=settings.base_dir, region=name)
        regions[name] = Region(name=name, settings=rs, store=store, keys=keys)
    return regions
