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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from onshore.errors import ConfigError

ENV_PREFIX = "ONSHORE_"
DEFAULT_CONFIG_NAME = "onshore.toml"

Role = Literal["vehicle", "gateway", "analyst", "officer", "auditor", "subject", "monitor"]


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
    max_protobuf_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="largest fleet-telemetry protobuf body (one message; upstream refuses vehicle frames over "
        "1,000,000 bytes); its JSON forms take ingest.max_body_bytes",
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
    gateway_rate_per_s: float = Field(
        default=200, gt=0, description="requests per second one gateway may send, sustained (token bucket; 429 after)"
    )
    gateway_burst: int = Field(default=400, ge=1, description="requests one gateway may send at once above that rate")
    gateway_max_in_flight: int = Field(
        default=16, ge=1, description="uploads one gateway may have in progress at once, for all its vehicles"
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


class BusSettings(_Frozen):
    kind: Literal["inprocess", "nats"] = Field(
        default="inprocess",
        description="inprocess: each server admits and processes (embedded); nats: `onshore serve` gateways publish "
        "admitted batches to NATS JetStream and `onshore worker --region NAME` processes them (distributed)",
    )
    url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL, or several separated by commas (a cluster in the region's country); put "
        "credentials in ONSHORE_BUS__URL, never in the file",
    )
    prefix: str = Field(
        default="onshore",
        pattern=r"^[a-z][a-z0-9-]{0,31}$",
        description="what the region's JetStream names start with: stream PREFIX-REGION, subject "
        "PREFIX.REGION.batches, consumer PREFIX-REGION-workers, buckets PREFIX-REGION-receipts and -payloads",
    )
    replicas: int = Field(default=1, ge=1, le=5, description="copies JetStream keeps of each stream and bucket")
    duplicate_window_s: float = Field(
        default=120, gt=0, le=86400, description="how long JetStream drops a second publish of the same batch id"
    )
    max_age_s: int = Field(
        default=86400,
        ge=60,
        description="longest a batch (and a frame's image) may wait in NATS for a worker before JetStream discards "
        "it; they hold personal data in the clear (docs/architecture.md)",
    )
    max_ack_pending: int = Field(
        default=64, ge=1, description="batches handed to a region's workers and not yet acknowledged (back-pressure)"
    )
    ack_wait_s: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="a delivered batch not acknowledged (nor reported in progress) within this is delivered again",
    )
    nak_delay_s: float = Field(
        default=5, ge=0, le=3600, description="how long a batch that met a transient failure waits before redelivery"
    )
    fetch_batch: int = Field(default=8, ge=1, le=256, description="batches a worker takes from the stream at once")
    receipt_ttl_s: int = Field(
        default=86400, ge=60, description="how long a receipt (pending, its answer or its error) can be fetched"
    )
    publish_timeout_s: float = Field(
        default=10, gt=0, le=300, description="how long a gateway waits for JetStream to confirm a publish (503 after)"
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


class ProcessorSettings(_Frozen):
    """Who the processor is: the facts the reports state (Provisions Art. 14) and the status the gate reads.

    Every change is recorded in each region's ledger (a ``profile_change`` event with the profile's digest) the
    first time a runtime sees it; the people named here are staff contacts, never put in an event.
    """

    name: str = Field(default="", max_length=200, description="the processor's legal name (汽车数据处理者名称)")
    responsible_person: str = Field(
        default="", max_length=100, description="person in charge of automobile data security (数据安全负责人)"
    )
    responsible_contact: str = Field(default="", max_length=200, description="that person's phone or e-mail")
    rights_contact_person: str = Field(
        default="", max_length=100, description="person handling users' rights requests (个人信息保护联系人)"
    )
    rights_contact: str = Field(default="", max_length=200, description="that person's phone or e-mail")
    ciio: bool = Field(
        default=False,
        description="the processor is a critical information infrastructure operator (CIIO): the pack's CIIO rules "
        "apply at the border (2024 Provisions: any personal information abroad needs a security assessment)",
    )
    province: str = Field(
        default="", max_length=60, description="province of registration: where the annual report is filed"
    )

    def statuses(self) -> frozenset[str]:
        """The processor statuses rule packs can name (``processor_status`` on outbound rules)."""
        return frozenset({"ciio"} if self.ciio else set())


class TokenSettings(_Frozen):
    name: str = Field(description="who holds the token (no personal data: a role name or team)")
    role: Role = Field(
        description="gateway (a fleet back-end speaking for the vehicles registered to it), analyst (one region), "
        "officer, auditor, monitor (metrics only), or vehicle or subject"
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token; the token itself is never stored")
    region: str | None = Field(default=None, description="the one region an analyst may read")
    expires: dt.date | None = Field(
        default=None,
        description="last day (UTC) the token is accepted; from the next day it answers 401. None: until removed",
    )


def _topic_base_problem(base: str) -> str | None:
    """Why ``base`` cannot be a topic base (topic levels, no wildcard, no empty level, not a ``$`` topic), or None."""
    if base.startswith("$"):
        return "must not start with $ (the broker's own topics)"
    if any(c in base for c in "+#\x00"):
        return "must not hold a wildcard (+ or #)"
    if any(not level for level in base.split("/")):
        return "must be levels separated by single / (no leading, trailing or doubled /)"
    if len(base.encode()) > 200:
        return "must be at most 200 bytes"
    return None


class MqttSettings(_Frozen):
    """`onshore mqtt`: the broker, the topics it takes, and how it batches (see docs/mqtt.md)."""

    host: str = Field(default="127.0.0.1", description="the MQTT broker's host name or address")
    port: int = Field(default=1883, ge=1, le=65535, description="the broker's port (8883 is usual with tls)")
    tls: bool = Field(default=False, description="connect over TLS, checking the broker's certificate")
    ca_file: str | None = Field(
        default=None, description="CA bundle the broker's certificate is checked against (default: the system's)"
    )
    cert_file: str | None = Field(
        default=None, description="client certificate (PEM) onshore presents, for brokers that authenticate by it"
    )
    key_file: str | None = Field(default=None, description="the private key (PEM) of cert_file")
    username: str | None = Field(default=None, description="user name onshore logs in to the broker with")
    password: SecretStr | None = Field(
        default=None, description="its password: set it as ONSHORE_MQTT__PASSWORD, not in the file"
    )
    client_id: str = Field(
        default="onshore-mqtt",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="MQTT client id, one per process (the broker keeps its session under it): "
        "`onshore mqtt --client-id` sets it per process",
    )
    topic_root: str = Field(
        default="fleet",
        description="topics <topic_root>/<gateway>/<VIN>/... are a gateway's: the level after the root names "
        "the gateway (a Mosquitto ACL `pattern write fleet/%u/#` makes it the broker user); empty: off",
    )
    bases: dict[str, str] = Field(
        default_factory=dict,
        description='further topic bases, each taken as one gateway\'s: {"tesla-cn" = "fleet-cn"} reads '
        "tesla-cn/<VIN>/v/<Field> as gateway fleet-cn's",
    )
    share_group: str = Field(
        default="onshore",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="MQTT 5 shared-subscription group ($share/<group>/...): the processes of one group split "
        "the messages between them",
    )
    session_expiry_s: int = Field(
        default=86400,
        ge=60,
        description="how long the broker keeps this client's session, subscriptions and unacknowledged "
        "messages while it is away (a restart within it loses nothing)",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive interval")
    flush_records: int = Field(
        default=1000,
        ge=1,
        description="submit the held messages once they carry this many records (at most ingest.max_batch_records "
        "per vehicle batch)",
    )
    flush_ms: int = Field(
        default=200, ge=1, le=60_000, description="submit the held messages at the latest this long after the first"
    )
    max_in_flight: int = Field(
        default=2000,
        ge=1,
        le=65535,
        description="messages the broker may send before onshore acknowledges (MQTT 5 Receive Maximum); "
        "messages are acknowledged only after their batch commits",
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="largest accepted message payload; an onshore batch message also takes ingest.max_body_bytes",
    )
    report_errors: bool = Field(
        default=True,
        description="publish each refusal (code and reason, never a VIN or value) to <base>/onshore/errors",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="serve Prometheus metrics on server.host at this port (0: off)"
    )

    @field_validator("topic_root")
    @classmethod
    def _root(cls, v: str) -> str:
        if v and (problem := _topic_base_problem(v)):
            raise ValueError(f"topic root {v!r} {problem}")
        return v

    @field_validator("bases")
    @classmethod
    def _bases(cls, v: dict[str, str]) -> dict[str, str]:
        for base, gateway in v.items():
            if problem := _topic_base_problem(base):
                raise ValueError(f"topic base {base!r} {problem}")
            if not gateway:
                raise ValueError(f"topic base {base!r} names no gateway")
        return v

    @model_validator(mode="after")
    def _shape(self) -> MqttSettings:
        root = self.topic_root
        for base in self.bases:
            if root and (base == root or base.startswith(root + "/")):
                raise ValueError(f"topic base {base!r} lies under topic_root {root!r}: its messages would come twice")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file without cert_file")
        return self


class Settings(_Frozen):
    """Everything onshore needs to run; passed in, never a global."""

    server: ServerSettings = ServerSettings()
    ingest: IngestSettings = IngestSettings()
    frames: FrameSettings = FrameSettings()
    limits: LimitSettings = LimitSettings()
    rules: RulesSettings = RulesSettings()
    retention: RetentionSettings = RetentionSettings()
    processor: ProcessorSettings = ProcessorSettings()
    bus: BusSettings = BusSettings()
    mqtt: MqttSettings = MqttSettings()
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
        gateways = {t.name for t in self.tokens if t.role == "gateway"}
        for base, gateway in self.mqtt.bases.items():
            if gateway not in gateways:
                raise ValueError(f"mqtt.bases: {base!r} names gateway {gateway!r}, which no gateway token has")
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
    walk(ProcessorSettings, "processor.")
    walk(BusSettings, "bus.")
    walk(MqttSettings, "mqtt.")
    walk(RegionSettings, "regions.NAME.")
    walk(TokenSettings, "tokens[].")
    return docs
