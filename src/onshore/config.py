"""Settings: one frozen model, loaded from ``onshore.toml`` with environment overrides.

Precedence: CLI flag > ``ONSHORE_*`` environment variable > ``onshore.toml`` > default.
Environment keys use ``__`` between levels: ``ONSHORE_SERVER__PORT=9000``,
``ONSHORE_REGIONS__CN__RECORD_STORE=postgresql+psycopg://…``, ``ONSHORE_INGEST__MAX_BATCH_RECORDS=2000``.
Relative paths in store URLs are resolved against the folder holding the config file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from onshore.errors import ConfigError

ENV_PREFIX = "ONSHORE_"
DEFAULT_CONFIG_NAME = "onshore.toml"

Role = Literal["vehicle", "analyst", "officer", "auditor", "subject", "monitor"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Frozen):
    host: str = Field(default="127.0.0.1", description="interface the API listens on; loopback by default")
    port: int = Field(default=8470, ge=1, le=65535, description="TCP port of the API")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body of the JSON routes other than ingest and frames (bases, exports, consents)",
    )
    body_timeout_s: float = Field(
        default=30, gt=0, le=3600, description="time a client has to send the whole body of those routes (408 after)"
    )


class IngestSettings(_Frozen):
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="largest accepted request body")
    max_batch_records: int = Field(default=5000, ge=1, description="most records in one ingest batch")
    max_value_bytes: int = Field(default=4096, ge=64, description="largest JSON-encoded value of one record")
    max_msg_id_chars: int = Field(
        default=128, ge=8, le=128, description="longest accepted message id (at most 128, the stored column's width)"
    )
    max_clock_skew_s: int = Field(default=86400, ge=0, description="how far in the future a record's timestamp may lie")
    max_value_depth: int = Field(
        default=32, ge=1, le=200, description="deepest nesting of lists and objects in one record's value"
    )
    body_timeout_s: float = Field(
        default=30, gt=0, le=3600, description="time a vehicle has to send a whole ingest body (408 after)"
    )


class FrameSettings(_Frozen):
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="largest accepted camera frame (bytes)")
    max_pixels: int = Field(
        default=40_000_000, ge=1, description="largest accepted frame in pixels, checked before decoding"
    )
    detector: str = Field(
        default="faces-and-plates",
        description="face and plate detector: a name registered in onshore.vision.detectors, or module:callable",
    )
    workers: int = Field(default=0, ge=0, description="detection worker threads; 0 = one per CPU this process may use")
    jpeg_quality: int = Field(default=90, ge=50, le=100, description="quality of stored anonymised JPEG frames")
    max_in_flight: int = Field(
        default=16, ge=1, description="frames processed at once; more uploads get 503 with Retry-After (bounds memory)"
    )
    body_timeout_s: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="time a vehicle has to send a whole frame; the body is read before a processing place is taken",
    )
    max_pixels_per_byte: int = Field(
        default=256,
        ge=16,
        description="most pixels a JPEG frame may claim per byte sent, checked before decoding (a flat 1080p JPEG "
        "is about 60): decode work stays bounded by the bytes sent; PNGs are bounded by deflate's own limit",
    )


class LimitSettings(_Frozen):
    vehicle_rate_per_s: float = Field(
        default=20, gt=0, description="requests per second one vehicle may send, sustained (token bucket; 429 after)"
    )
    vehicle_burst: int = Field(default=40, ge=1, description="requests one vehicle may send at once above that rate")
    vehicle_max_in_flight: int = Field(
        default=4, ge=1, description="uploads (ingest batches and frames) one vehicle may have in progress at once"
    )


class RulesSettings(_Frozen):
    packs: list[str] = Field(
        default_factory=lambda: ["cn-auto", "eu-gdpr"],
        description="rule packs in force: built-in names or paths to YAML files; one per jurisdiction",
    )
    enable_unconfirmed: list[str] = Field(
        default_factory=list,
        description="ids of rules resting on unconfirmed [U] facts to switch on (held back by default)",
    )


class RetentionSettings(_Frozen):
    interval_s: int = Field(
        default=3600, ge=0, description="how often `onshore serve` runs the retention job (seconds; 0 = never)"
    )


class RegionSettings(_Frozen):
    jurisdiction: str = Field(pattern=r"^[A-Z]{2,3}$", description="legal territory the region belongs to")
    location: str = Field(description="where the region's storage physically is, e.g. cn-guizhou")
    record_store: str = Field(description="SQLAlchemy URL of the record store (sqlite:/// or postgresql+psycopg://)")
    blob_store: str = Field(
        description="file://folder or s3://bucket[/prefix]?endpoint=URL&region=NAME: anonymised frames (in-country)"
    )
    key_store: str = Field(
        description="where the region's keys live (never leaving it): a file:// folder (embedded), or the URL of "
        "a separate key database every process of the region reaches (postgresql+psycopg://host/keys)"
    )
    restricted_store: str | None = Field(
        default=None,
        description="file:// folder for raw frames kept under a pack's raw-frame policy (encrypted, officer-only); "
        "default: a `restricted` folder beside a file:// key store (required with a database key store)",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = Field(
        default="FULL", description="SQLite durability: FULL survives power loss, NORMAL only process crashes"
    )


class TokenSettings(_Frozen):
    name: str = Field(description="who holds the token (no personal data: a role name or team)")
    role: Role = Field(description="vehicle, analyst (one region), officer, auditor, subject or monitor (metrics only)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token; the token itself is never stored")
    region: str | None = Field(default=None, description="the one region an analyst may read")
    expires: dt.date | None = Field(
        default=None,
        description="last day (UTC) the token is accepted; from the next day it answers 401. None: until removed",
    )


class Settings(_Frozen):
    """Everything onshore needs to run; passed in, never a global."""

    server: ServerSettings = ServerSettings()
    ingest: IngestSettings = IngestSettings()
    frames: FrameSettings = FrameSettings()
    limits: LimitSettings = LimitSettings()
    rules: RulesSettings = RulesSettings()
    retention: RetentionSettings = RetentionSettings()
    regions: dict[str, RegionSettings] = Field(default_factory=dict)
    tokens: list[TokenSettings] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), description="folder relative paths are resolved against")
    config_file: Path | None = Field(default=None, description="the file these settings were loaded from, if any")

    @field_validator("regions")
    @classmethod
    def _region_names(cls, v: dict[str, RegionSettings]) -> dict[str, RegionSettings]:
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name):
                raise ValueError(f"region name {name!r} must be lower-case letters, digits and '-'")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if not self.regions:
            raise ValueError("at least one [regions.NAME] table is needed")
        for token in self.tokens:
            if token.role == "analyst" and token.region is None:
                raise ValueError(f"token {token.name!r}: an analyst token needs a region")
            if token.region is not None and token.region not in self.regions:
                raise ValueError(f"token {token.name!r}: region {token.region!r} is not configured")
        return self

    def region_for_jurisdiction(self, jurisdiction: str) -> str | None:
        """The name of the first region of ``jurisdiction``, or None."""
        for name, region in self.regions.items():
            if region.jurisdiction == jurisdiction:
                return name
        return None

    def resolve_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else (self.base_dir / path)


def default_regions_toml(data_dir: str = "onshore-data") -> str:
    """The ``[regions]`` part of a fresh config: ``cn`` (CN, Guizhou) and ``eu`` (EU, Frankfurt)."""
    return f"""
[regions.cn]
# Data collected in China stays here (Provisions Art. 11). Point record_store at PostgreSQL in-country
# (postgresql+psycopg://user@host/db) and blob_store at an in-country S3 bucket (s3://bucket?endpoint=URL)
# for distributed mode.
jurisdiction = "CN"
location = "cn-guizhou"
record_store = "sqlite:///{data_dir}/cn/records.sqlite"
blob_store = "file://{data_dir}/cn/blobs"
key_store = "file://{data_dir}/cn/keys"

[regions.eu]
jurisdiction = "EU"
location = "eu-frankfurt"
record_store = "sqlite:///{data_dir}/eu/records.sqlite"
blob_store = "file://{data_dir}/eu/blobs"
key_store = "file://{data_dir}/eu/keys"
"""


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == "ONSHORE_CONFIG":
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key}: conflicts with another override")
        node[parts[-1]] = _parse_env_value(value)
    return tree


def _parse_env_value(value: str) -> Any:
    """Environment values are TOML literals when they parse as one (numbers, lists), else strings."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from ``path`` (or ``$ONSHORE_CONFIG``, or ``./onshore.toml``).

    Raises:
        ConfigError: the file is missing or unreadable, or a key is invalid; the message names the
            file, the key and the reason.
    """
    env = os.environ if env is None else env
    if path is None:
        path = Path(env.get("ONSHORE_CONFIG", DEFAULT_CONFIG_NAME))
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; create one with `onshore init`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.__class__.__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    data = _merge(raw, _env_overrides(env))
    if overrides:
        data = _merge(data, overrides)
    data["base_dir"] = path.resolve().parent
    data["config_file"] = path.resolve()
    try:
        return Settings.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(
            f"{path}: key {key}: {first['msg']}",
            details=[{"key": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()],
        ) from exc


def settings_documentation() -> dict[str, str]:
    """Every setting's dotted key and its description (used by `onshore config` and a docs test)."""
    docs: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            else:
                docs[f"{prefix}{name}"] = field.description or ""

    walk(ServerSettings, "server.")
    walk(IngestSettings, "ingest.")
    walk(FrameSettings, "frames.")
    walk(LimitSettings, "limits.")
    walk(RulesSettings, "rules.")
    walk(RetentionSettings, "retention.")
    walk(RegionSettings, "regions.NAME.")
    walk(TokenSettings, "tokens[].")
    return docs
