"""What every rule-pack section builds on: categories, confidence tags, sources and the rule base.

``schema`` (the pack) and ``outbound`` (its outbound section) both import from here, never from each other
backwards, so the rule-pack modules have no import cycle.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_TAG = re.compile(r"^[a-z][a-z0-9_]*$")
# A signal name is a fleet-telemetry field name (``VehicleSpeed``) or a VSS path
# (``Vehicle.Cabin.Seat.Row1``); ``*`` is allowed in patterns, matching one path segment or more.
SIGNAL_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*(\.[A-Z0-9][A-Za-z0-9_]*)*$")
_SIGNAL_PATTERN = re.compile(r"^[A-Z*][A-Za-z0-9_*]*(\.[A-Z0-9*][A-Za-z0-9_*]*)*$")


class Category(StrEnum):
    """Legal data categories. A datum can carry several."""

    PERSONAL = "personal"
    SENSITIVE_PERSONAL = "sensitive_personal"
    IMPORTANT = "important"
    GENERAL = "general"


class Confidence(StrEnum):
    """Confidence tag of the legal fact behind a rule (see REGULATION.md §0)."""

    CONFIRMED = "C"
    SECONDARY = "S"
    UNCONFIRMED = "U"


class ValueKind(StrEnum):
    """What shape a signal's value must have; checked by the admit stage."""

    NUMBER = "number"  # int or float; a numeric string is accepted (fleet-telemetry firmware differences)
    INTEGER = "integer"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"  # a name (string) or an int code
    LOCATION = "location"  # {"latitude", "longitude"} or the fleet-telemetry string "(37.41 N, 122.14 W)"
    OBJECT = "object"  # a JSON object (e.g. Doors)
    TIME = "time"  # "HH:MM:SS" or {"hour","minute","second"}
    ANY = "any"


def _check_tags(tags: list[str]) -> list[str]:
    for t in tags:
        if not _TAG.match(t):
            raise ValueError(f"tag {t!r} must be lower_snake_case")
    return tags


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a rule comes from."""

    instrument: str = Field(description="id of an entry in the pack's `instruments`")
    article: str = Field(min_length=1, description='e.g. "Art. 3(3)"')
    confidence: Confidence
    note: str | None = None


class Instrument(_Strict):
    title: str
    issued: dt.date | None = None
    in_force: dt.date | None = None
    superseded_from: dt.date | None = None


class Purpose(_Strict):
    id: str
    description: str
    sensitive_allowed: bool = Field(
        default=False,
        description="whether sensitive personal data may be processed for this purpose at all",
    )
    source: Source | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _TAG.match(v):
            raise ValueError(f"purpose id {v!r} must be lower_snake_case")
        return v


class _Rule(_Strict):
    id: str
    source: Source
    enabled: bool | None = Field(
        default=None,
        description="defaults to true, except for rules whose source confidence is U (held back)",
    )
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"rule id {v!r} must match {_ID.pattern}")
        return v

    @property
    def active(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return self.source.confidence is not Confidence.UNCONFIRMED
