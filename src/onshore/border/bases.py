"""Transfer bases: the approvals, filings and safeguards under which data may leave, as written and as recorded.

A basis (security assessment approval, standard contract filing, certification, recorded exemption; in the
EU SCCs, BCRs, a derogation…) has an id, a route of the rule pack, a scope (categories, tags, signals,
purposes, recipient, destinations, maximum people and records), conditions (the de-identification the
recipient agreed to), a status and a validity. Status moves ``draft → approved → revoked``; ``expired`` is
computed from the expiry date. ``basis_check`` checks a spec against the pack, ``basis_registry`` records
bases and their lifecycle.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from onshore.border import dates
from onshore.border.dates import LegalDate
from onshore.errors import ValidationError
from onshore.rules.outbound import TransformSpec
from onshore.rules.schema import Category

# Lower-case only, so an id can never look like a VIN in a ledger event.
ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{1,63}$"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasisScope(_Strict):
    """What a basis covers. A transfer outside any part of it is denied (Provisions Art. 12; GDPR Art. 46)."""

    categories: list[Category] = Field(min_length=1, description="data categories covered")
    tags: list[str] = Field(default_factory=list, description="data types covered; empty: any")
    signals: list[str] = Field(default_factory=list, description="signals covered; empty: any")
    purposes: list[str] = Field(min_length=1, description="purposes of the recipient's use")
    recipient: str = Field(pattern=ID_PATTERN, description="id of the receiving organisation")
    destinations: list[str] = Field(min_length=1, description="jurisdictions the data may go to")
    max_people: int | None = Field(default=None, ge=1, description="most distinct people over the basis's life")
    max_records: int | None = Field(default=None, ge=1, description="most records over the basis's life")

    @field_validator("destinations")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not re.fullmatch(r"[A-Z]{2,3}", code):
                raise ValueError(f"destination {code!r} must be 2-3 upper-case letters (ISO 3166 or EU)")
        return v

    @field_validator("tags", "purposes")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} must be lower_snake_case")
        return v


class BasisSpec(_Strict):
    """A basis as the officer writes it (YAML or JSON)."""

    id: str = Field(pattern=ID_PATTERN, description="lower-case id, e.g. cn-sa-2024-001")
    region: str = Field(description="the region whose data the basis covers")
    route: str = Field(description="route id of the region's rule pack (security_assessment, scc…)")
    reference: str | None = Field(default=None, max_length=120, description="approval or filing number")
    scope: BasisScope
    conditions: list[TransformSpec] = Field(default_factory=list, description="required de-identification")
    expires_on: LegalDate | None = Field(default=None, description="term of a contract or certificate")
    derogation: str | None = Field(default=None, description="for route derogation: the Art. 49 derogation key")
    attestations: list[str] = Field(default_factory=list, description="facts recorded (e.g. subjects_informed)")
    note: str | None = Field(default=None, max_length=2000)
    # what the outbound supplement states (Provisions Art. 15): the recipient's contact, where and how long abroad
    recipient_contact: str | None = Field(default=None, max_length=200, description="the recipient's contact")
    storage_abroad: str | None = Field(default=None, max_length=200, description="storage place abroad")
    period_abroad: str | None = Field(default=None, max_length=100, description="storage period abroad")


@dataclass(frozen=True)
class TransferBasis:
    """A recorded basis with its status and validity."""

    spec: BasisSpec
    status: str  # draft | approved | revoked
    approved_on: dt.date | None
    expires_on: dt.date | None
    reapply_from: dt.date | None
    validity_rule: str | None
    version: int
    created_ms: int
    updated_ms: int
    revoked_ms: int | None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def route(self) -> str:
        return self.spec.route

    def status_on(self, day: dt.date) -> str:
        """``draft``, ``approved``, ``expired``, ``revoked`` or ``pending`` (approved with a later date)."""
        if self.status != "approved":
            return self.status
        if self.approved_on is not None and day < self.approved_on:
            return "pending"
        if self.expires_on is not None and day >= self.expires_on:
            return "expired"
        return "approved"

    def to_dict(self, day: dt.date | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.spec.model_dump(mode="json"),
            "status": self.status,
            "approved_on": _iso(self.approved_on),
            "expires_on": _iso(self.expires_on),
            "reapply_from": _iso(self.reapply_from),
            "validity_rule": self.validity_rule,
            "version": self.version,
        }
        if day is not None:
            out["status_on_date"] = self.status_on(day)
            out["as_of"] = day.isoformat()
            if self.expires_on is not None:
                out["working_days_to_expiry"] = dates.working_days_between(day, self.expires_on)
                out["in_reapply_window"] = bool(
                    self.reapply_from is not None and self.reapply_from <= day < self.expires_on
                )
        return out


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def parse_spec(data: Any) -> BasisSpec:
    """Validate a basis spec.

    Raises:
        ValidationError: the spec does not match the format; the message names the field.
    """
    try:
        return BasisSpec.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ValidationError(f"basis {where}: {err['msg']}") from exc
