"""The processor's profile (``[processor]`` in the settings) as recorded in every region's ledger.

The profile is configuration, but the reports state it and the border gate acts on its CIIO status, so each
change is recorded: when a runtime starts with a profile that differs from the one a region last recorded, it
writes the new version to the region's ``register_entries`` (register ``processor_profile``) with a
``profile_change`` event (counts: version, ciio; digest: the profile as recorded). A default, empty profile is
not recorded until it first changes. The names and contacts stay in the region's store, never in an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import select, update

from onshore import clock
from onshore.config import ProcessorSettings
from onshore.model import LifecycleEvent
from onshore.registers.service import entry_digest
from onshore.registers.tables import register_entries
from onshore.storage.region import Region

PROFILE = "processor_profile"


def recorded_profile(region: Region) -> tuple[int, dict[str, Any]] | None:
    """``(version, profile)`` the region last recorded, or None."""
    t = register_entries.c
    with region.store.read("read processor profile") as conn:
        row = conn.execute(
            select(t.version, t.body).where(t.region == region.name, t.register == PROFILE).limit(1)
        ).first()
    return None if row is None else (int(row.version), orjson.loads(row.body))


def sync_profile(regions: Mapping[str, Region], profile: ProcessorSettings) -> list[int]:
    """Record ``profile`` in each region whose last recorded profile differs; returns the ledger indexes written."""
    body = profile.model_dump(mode="json")
    indexes: list[int] = []
    for region in regions.values():
        known = recorded_profile(region)
        if known is None and profile == ProcessorSettings():
            continue
        if known is not None and known[1] == body:
            continue
        with region.store.transaction("record processor profile") as conn:
            t = register_entries.c
            row = conn.execute(
                select(t.id, t.version, t.body).where(t.region == region.name, t.register == PROFILE)
            ).first()
            if row is not None and orjson.loads(row.body) == body:
                continue  # another process recorded it meanwhile
            now = clock.now_ms()
            index = region.store.journal.tree_size(conn)
            version = 1 if row is None else int(row.version) + 1
            values: dict[str, Any] = {
                "day": clock.now().date().isoformat(),
                "status": "ciio" if profile.ciio else "non_ciio",
            }
            values |= {
                "version": version,
                "body": orjson.dumps(body).decode(),
                "updated_ms": now,
                "ledger_index": index,
            }
            if row is None:
                inserted = conn.execute(
                    register_entries.insert().values(region=region.name, register=PROFILE, created_ms=now, **values)
                ).inserted_primary_key
                assert inserted is not None
                entry_id = inserted[0]
            else:
                entry_id = row.id
                conn.execute(update(register_entries).where(t.id == entry_id).values(**values))
            event = LifecycleEvent(
                kind="profile_change",
                region=region.name,
                at_ms=now,
                actor_role="officer",
                counts={"entry": int(entry_id), "version": version, "ciio": int(profile.ciio)},
                digest=entry_digest(PROFILE, int(entry_id), version, body),
            )
            indexes.append(region.store.journal.append(conn, [event.to_bytes()]))
    return indexes
