"""What each register holds, as the officer writes it, and the facts of an entry that its ledger events carry.

Registers (Provisions Art. 14 asks the annual report for each of them):

- ``rights_request``: a data subject's request, with the date the officer received it; its deadline is the
  pack's working days from that date (erasure: ``erasure.deadline_working_days``), its handled date is recorded;
- ``incident``: a data-security incident: what, when, the categories and number of people affected, how it was
  handled, when it was closed;
- ``complaint``: a user complaint about automobile data: when, the categories concerned, whether it concerns a
  transfer abroad (Art. 15), how it was handled, when it was closed;
- ``provision``: data provided to a third party inside the country: recipient, purpose, categories, basis (the
  consent level the pack requires, or another lawful basis), people and records, from when to when.

An entry's *facts* (``facts``) are named non-negative integers: dates as ``YYYYMMDD``, counts, flags, category
bits. They go into the entry's ledger event, so a report's figures can be recomputed from the ledger alone;
the free text stays in the region's store, committed to by the event's digest.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from onshore.border.dates import LegalDate, yyyymmdd
from onshore.rules.schema import Category
from onshore.storage.predicates import category_bits

RegisterName = Literal["rights_request", "incident", "complaint", "provision"]
REGISTERS: tuple[str, ...] = ("rights_request", "incident", "complaint", "provision")
RIGHTS_KINDS = ("access", "copy", "correction", "erasure", "consent_withdrawal", "explanation", "portability")
_TEXT = 2000
_LINE = 200


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _bits(categories: list[Category]) -> int:
    return category_bits(",".join(sorted({c.value for c in categories})))


def _ordered(first: dt.date, later: dt.date | None, what: str) -> None:
    if later is not None and later < first:
        raise ValueError(f"{what} ({later}) is before {first}")


class RightsRequestSpec(_Entry):
    """A data subject's request as received."""

    kind: Literal["access", "copy", "correction", "erasure", "consent_withdrawal", "explanation", "portability"]
    received_on: LegalDate = Field(description="the date the request reached the processor (starts the deadline)")
    subject: str | None = Field(
        default=None, pattern=r"^sub_[0-9a-f]{8,64}$", description="the subject id, once identified"
    )
    channel: str | None = Field(default=None, max_length=_LINE, description="app, e-mail, hotline, letter…")
    status: Literal["received", "in_progress", "handled", "refused"] = "received"
    handled_on: LegalDate | None = Field(default=None, description="the date it was answered or carried out")
    note: str | None = Field(default=None, max_length=_TEXT, description="what was done (no personal data)")

    @model_validator(mode="after")
    def _consistent(self) -> RightsRequestSpec:
        _ordered(self.received_on, self.handled_on, "handled_on")
        if (self.status in ("handled", "refused")) != (self.handled_on is not None):
            raise ValueError("handled_on is set exactly when the status is handled or refused")
        return self


class IncidentSpec(_Entry):
    """A data-security incident and its handling."""

    title: str = Field(min_length=1, max_length=_LINE, description="what happened, in a line")
    occurred_on: LegalDate
    detected_on: LegalDate | None = None
    categories: list[Category] = Field(min_length=1, description="categories of data affected")
    people_affected: int = Field(ge=0, le=10**10)
    handling: str = Field(default="", max_length=_TEXT, description="containment, notification, remediation")
    reported_to_authority: bool = False
    closed_on: LegalDate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> IncidentSpec:
        _ordered(self.occurred_on, self.detected_on, "detected_on")
        _ordered(self.occurred_on, self.closed_on, "closed_on")
        return self


class ComplaintSpec(_Entry):
    """A user complaint about automobile data and its handling."""

    topic: str = Field(min_length=1, max_length=_LINE, description="what the complaint is about, in a line")
    received_on: LegalDate
    categories: list[Category] = Field(default_factory=list)
    about_transfer: bool = Field(default=False, description="the complaint concerns a transfer abroad (Art. 15)")
    handling: str = Field(default="", max_length=_TEXT)
    closed_on: LegalDate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ComplaintSpec:
        _ordered(self.received_on, self.closed_on, "closed_on")
        return self


class ProvisionSpec(_Entry):
    """Data provided to a third party inside the country."""

    recipient: str = Field(min_length=1, max_length=_LINE, description="the receiving organisation")
    recipient_contact: str = Field(default="", max_length=_LINE)
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="a purpose id of the region's rule pack")
    categories: list[Category] = Field(min_length=1)
    basis: Literal["consent_ordinary", "consent_separate", "contract", "statutory_duty"] = Field(
        description="the lawful basis: consent at the level the pack requires for the categories, or another"
    )
    people: int = Field(ge=0, le=10**10)
    records: int = Field(ge=0, le=10**13)
    started_on: LegalDate
    ended_on: LegalDate | None = None
    note: str | None = Field(default=None, max_length=_TEXT)

    @model_validator(mode="after")
    def _consistent(self) -> ProvisionSpec:
        _ordered(self.started_on, self.ended_on, "ended_on")
        return self


SPECS: dict[str, type[_Entry]] = {
    "rights_request": RightsRequestSpec,
    "incident": IncidentSpec,
    "complaint": ComplaintSpec,
    "provision": ProvisionSpec,
}


def facts(register: str, spec: _Entry, deadline: dt.date | None) -> dict[str, int]:
    """The named integers of an entry that its ledger event carries (see the module docstring)."""
    out: dict[str, int | None]
    if isinstance(spec, RightsRequestSpec):
        out = {
            "received": yyyymmdd(spec.received_on),
            "deadline": yyyymmdd(deadline),
            "handled": yyyymmdd(spec.handled_on),
            f"kind_{spec.kind}": 1,
            f"status_{spec.status}": 1,
        }
    elif isinstance(spec, IncidentSpec):
        out = {
            "occurred": yyyymmdd(spec.occurred_on),
            "closed": yyyymmdd(spec.closed_on),
            "people_affected": spec.people_affected,
            "category_bits": _bits(spec.categories),
            "reported": int(spec.reported_to_authority),
        }
    elif isinstance(spec, ComplaintSpec):
        out = {
            "received": yyyymmdd(spec.received_on),
            "closed": yyyymmdd(spec.closed_on),
            "about_transfer": int(spec.about_transfer),
            "category_bits": _bits(spec.categories),
        }
    elif isinstance(spec, ProvisionSpec):
        out = {
            "started": yyyymmdd(spec.started_on),
            "ended": yyyymmdd(spec.ended_on),
            "people": spec.people,
            "records": spec.records,
            "category_bits": _bits(spec.categories),
            "separate_consent": int(spec.basis == "consent_separate"),
        }
    else:  # pragma: no cover - SPECS lists every spec
        raise TypeError(f"no facts for register {register!r}")
    return {k: v for k, v in out.items() if v is not None}


def event_kind(register: str) -> str:
    """The ledger event kind of a change to an entry of ``register``."""
    return f"{register}_change"


def spec_dump(spec: _Entry) -> dict[str, Any]:
    """The entry as JSON-ready data."""
    return spec.model_dump(mode="json")
