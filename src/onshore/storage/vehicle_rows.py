"""The ``vehicles`` table of a region's record store: registrations, token hashes, the gateway of each vehicle.

`VehicleRows` is mixed into `onshore.storage.sql.SQLRecordStore`, whose ``transaction`` and ``read`` it uses: the
registry (`onshore.vehicles`) reaches the table only through these operations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, select, update

from onshore.errors import ConflictError
from onshore.storage.schema import vehicles

_IN_CHUNK = 500  # refs per IN (...) list: far below every driver's parameter limit


@dataclass(frozen=True)
class VehicleRow:
    """One registered vehicle as stored (``ref``: the region-keyed pseudonym of its VIN; no VIN is kept)."""

    ref: str
    market: str
    created_ms: int
    revoked_ms: int | None
    gateway: str | None


class VehicleRows:
    """Operations on the ``vehicles`` table (mixed into the record store)."""

    def transaction(self, what: str) -> contextlib.AbstractContextManager[Connection]:  # provided by the store
        raise NotImplementedError

    def read(self, what: str) -> contextlib.AbstractContextManager[Connection]:  # provided by the store
        raise NotImplementedError

    def add_vehicle(
        self, ref: str, market: str, token_sha256: str, now_ms: int, *, replace: bool, gateway: str | None = None
    ) -> None:
        """Register a vehicle, or give it a new token when ``replace`` (the old token stops working).

        Args:
            gateway: the gateway that speaks for the vehicle; on ``replace``, None keeps the one it has.

        Raises:
            ConflictError: the vehicle exists and ``replace`` is false.
        """
        with self.transaction("add vehicle") as conn:
            row = conn.execute(select(vehicles.c.ref).where(vehicles.c.ref == ref)).first()
            if row is not None:
                if not replace:
                    raise ConflictError(
                        "vehicle is already registered; use --rotate to issue a new token", details=None
                    )
                values: dict[str, object] = {"token_sha256": token_sha256, "market": market, "revoked_ms": None}
                if gateway is not None:
                    values["gateway"] = gateway
                conn.execute(update(vehicles).where(vehicles.c.ref == ref).values(**values))
            else:
                conn.execute(
                    vehicles.insert().values(
                        ref=ref, market=market, token_sha256=token_sha256, created_ms=now_ms, gateway=gateway
                    )
                )

    def set_vehicle_gateway(self, ref: str, gateway: str | None) -> bool:
        """Register the vehicle to ``gateway`` (None: to no gateway); False when no such vehicle."""
        with self.transaction("assign vehicle to gateway") as conn:
            changed = conn.execute(update(vehicles).where(vehicles.c.ref == ref).values(gateway=gateway))
            return bool(changed.rowcount)

    def revoke_vehicle(self, ref: str, now_ms: int) -> bool:
        """Revoke the vehicle's token; False when no such active vehicle."""
        with self.transaction("revoke vehicle") as conn:
            return bool(
                conn.execute(
                    update(vehicles)
                    .where(vehicles.c.ref == ref, vehicles.c.revoked_ms.is_(None))
                    .values(revoked_ms=now_ms)
                ).rowcount
            )

    def vehicle_by_token(self, token_sha256: str) -> tuple[str, str, int | None] | None:
        """``(ref, market, revoked_ms)`` of the vehicle holding this token hash, or None."""
        with self.read("authenticate vehicle") as conn:
            row = conn.execute(
                select(vehicles.c.ref, vehicles.c.market, vehicles.c.revoked_ms).where(
                    vehicles.c.token_sha256 == token_sha256
                )
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    def vehicle_exists(self, ref: str) -> bool:
        with self.read("look up vehicle") as conn:
            return conn.execute(select(vehicles.c.ref).where(vehicles.c.ref == ref)).first() is not None

    def vehicles_by_ref(self, refs: Sequence[str]) -> dict[str, VehicleRow]:
        """The registered vehicles among ``refs`` (one indexed lookup per 500 refs)."""
        found: dict[str, VehicleRow] = {}
        wanted = sorted(set(refs))
        with self.read("look up vehicles") as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                for row in conn.execute(_rows().where(vehicles.c.ref.in_(chunk))):
                    found[row.ref] = _row(row)
        return found

    def list_vehicles(self, *, gateway: str | None = None, limit: int = 1000, after_ref: str = "") -> list[VehicleRow]:
        """Registered vehicles in ``ref`` order (those of ``gateway`` only, when given), a page at a time."""
        query = _rows().where(vehicles.c.ref > after_ref).order_by(vehicles.c.ref).limit(limit)
        if gateway is not None:
            query = query.where(vehicles.c.gateway == gateway)
        with self.read("list vehicles") as conn:
            return [_row(row) for row in conn.execute(query)]


def _rows() -> Select[Any]:
    return select(vehicles.c.ref, vehicles.c.market, vehicles.c.created_ms, vehicles.c.revoked_ms, vehicles.c.gateway)


def _row(row: Row[Any]) -> VehicleRow:
    return VehicleRow(row.ref, row.market, row.created_ms, row.revoked_ms, row.gateway)
