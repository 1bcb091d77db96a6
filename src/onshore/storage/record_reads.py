"""Reads of a region's records for the API and the CLI: pages, counts, unclassified signals, origins.

`RecordReads` is mixed into `onshore.storage.sql.SQLRecordStore`, whose ``read`` it uses (each call one read-only
connection); the queries themselves are ``storage.records``'.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, func, select

from onshore.storage.predicates import RecordFilter
from onshore.storage.records import count_records, group_counts, select_records
from onshore.storage.schema import records, unclassified_signals


class RecordReads:
    """Read-only queries of the record store (mixed into it)."""

    def read(self, what: str) -> contextlib.AbstractContextManager[Connection]:  # provided by the store
        raise NotImplementedError

    def query_records(
        self,
        *,
        signal: str | None = None,
        category: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """A page of records in id order (``after_id`` is the cursor), as mappings of ``RecordRow``'s fields.

        Raises:
            InputError: ``category`` is not a known category.
        """
        where = RecordFilter(
            categories=(category,) if category else (),
            signals=(signal,) if signal else (),
            since_ms=since_ms,
            until_ms=until_ms,
            after_id=after_id,
        )
        with self.read("query records") as conn:
            return [row._asdict() for row in select_records(conn, where, limit=limit)]

    def counts_by_category(self) -> dict[str, int]:
        with self.read("count records") as conn:
            rows = group_counts(conn, RecordFilter(), ("categories",))
        result: dict[str, int] = {}
        for cats, n in rows:
            for c in cats.split(","):
                result[c] = result.get(c, 0) + n
        return result

    def count_records(self, where: RecordFilter | None = None) -> int:
        """How many records the region holds (that match ``where``)."""
        with self.read("count records") as conn:
            return count_records(conn, where or RecordFilter())

    def count_zone_records(self) -> int:
        with self.read("count zone records") as conn:
            return int(
                conn.execute(select(func.count()).select_from(records).where(records.c.zone.is_not(None))).scalar() or 0
            )

    def unclassified(self) -> list[dict[str, Any]]:
        with self.read("read unclassified signals") as conn:
            return [dict(r._mapping) for r in conn.execute(select(unclassified_signals))]

    def origins(self) -> dict[str, int]:
        """origin → record count: what `onshore residency check` scans."""
        with self.read("scan origins") as conn:
            rows = group_counts(conn, RecordFilter(), ("origin",))
        return {origin: int(n) for origin, n in rows}
