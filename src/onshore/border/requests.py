"""The export request: who asks for which data, for what, to whom and where (YAML or JSON).

Example (``docs/export-requests.md`` explains every field)::

    region: cn                          # the region whose data is asked for
    destination: DE                     # where it goes (ISO 3166 alpha-2, or EU)
    recipient: acme-diagnostics-gmbh    # the receiving organisation, as named in the basis
    purpose: diagnostics                # a purpose id of the region's rule pack
    requester: analyst                  # analyst (abroad) or officer
    since: 2024-05-01T00:00:00+08:00    # records with since <= ts < until
    until: 2024-06-01T00:00:00+08:00
    categories: [general, personal]     # optional: only records carrying one of these
    signals: [VehicleSpeed, Location]   # optional: only these signals
    fleet: all                          # or vehicles: [vehicle refs (pseudonyms), …]
    basis: cn-scc-2024-001              # optional: the basis to use; otherwise the gate looks for one
    format: parquet                     # parquet or ndjson

Vehicles are named by their region pseudonym (``vehicle_ref``), never by VIN; a VIN-like entry is refused
without being echoed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from onshore.border.bases import ID_PATTERN
from onshore.border.dates import LegalDateTime
from onshore.documents import read_document
from onshore.errors import InputError, ValidationError
from onshore.rules.schema import SIGNAL_NAME, Category

MAX_VEHICLES = 10_000
_VEHICLE_REF = re.compile(r"^[0-9a-f]{16,64}$")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$", re.IGNORECASE)


class ExportRequest(BaseModel):
    """A request to provide stored data to a recipient abroad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="the region whose data is asked for")
    destination: str = Field(pattern=r"^[A-Z]{2,3}$", description="jurisdiction the data goes to")
    recipient: str = Field(pattern=ID_PATTERN, description="id of the receiving organisation")
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="purpose id of the region's rule pack")
    requester: Literal["analyst", "officer"] = Field(default="officer", description="who asks")
    since: LegalDateTime = Field(description="first record time (inclusive), with a UTC offset")
    until: LegalDateTime = Field(description="last record time (exclusive), with a UTC offset")
    categories: list[Category] = Field(default_factory=list, description="only records with one of these")
    signals: list[str] = Field(default_factory=list, max_length=500, description="only these signals")
    vehicles: list[str] = Field(default_factory=list, max_length=MAX_VEHICLES, description="vehicle refs")
    fleet: Literal["all"] | None = Field(default=None, description="all vehicles of the region")
    basis: str | None = Field(default=None, pattern=ID_PATTERN, description="the basis to use")
    format: Literal["parquet", "ndjson"] = "parquet"

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("give the time with a UTC offset, e.g. 2024-05-01T00:00:00+08:00")
        return v

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SIGNAL_NAME.fullmatch(s):
                raise ValueError(f"signal {s!r} is neither a fleet-telemetry name nor a VSS path")
        return v

    @field_validator("vehicles")
    @classmethod
    def _vehicle_refs(cls, v: list[str]) -> list[str]:
        for i, ref in enumerate(v):
            if _VIN.match(ref):
                # never echo it: a VIN is personal data
                raise ValueError(f"vehicles[{i}] looks like a VIN; name vehicles by their vehicle_ref")
            if not _VEHICLE_REF.match(ref):
                raise ValueError(f"vehicles[{i}] is not a vehicle_ref (lower-case hex)")
        return sorted(set(v))

    @model_validator(mode="after")
    def _consistent(self) -> ExportRequest:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        if bool(self.vehicles) == (self.fleet is not None):
            raise ValueError("give exactly one of vehicles (a list of vehicle refs) or fleet: all")
        return self

    @property
    def since_ms(self) -> int:
        return int(self.since.timestamp() * 1000)

    @property
    def until_ms(self) -> int:
        return int(self.until.timestamp() * 1000)

    def public_dict(self) -> dict[str, Any]:
        """The request as it may be shown abroad and digested: vehicles replaced by their count and digest."""
        out = self.model_dump(mode="json", exclude={"vehicles"})
        if self.vehicles:
            out["vehicles"] = {
                "count": len(self.vehicles),
                "sha256": hashlib.sha256("\n".join(self.vehicles).encode()).hexdigest(),
            }
        return out

    def digest(self) -> str:
        """SHA-256 of the canonical public form (what a denial's ledger event carries)."""
        return hashlib.sha256(orjson.dumps(self.public_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_request(data: Any) -> ExportRequest:
    """Validate a request given as a mapping.

    Raises:
        ValidationError: a field is missing or invalid; the message names it and says why.
    """
    try:
        return ExportRequest.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ValidationError(
            f"export request {where}: {err['msg']}",
            details=[{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()],
        ) from exc


def load_request(path: Path) -> ExportRequest:
    """Read a request file (YAML or JSON).

    Raises:
        InputError: the file is unreadable or not YAML; ValidationError: see ``parse_request``.
    """
    raw = read_document(path, "request", InputError)
    if not isinstance(raw, dict):
        raise InputError(f"request {path} must be a mapping of fields (see docs/export-requests.md)")
    return parse_request(raw)
