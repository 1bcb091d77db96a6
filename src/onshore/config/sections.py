"""The settings of each part of onshore: one frozen model per ``[section]`` of ``onshore.toml``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["vehicle", "gateway", "analyst", "officer", "auditor", "subject", "monitor"]


class Frozen(BaseModel):
    """A settings section: unknown keys refused, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Frozen):
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


class IngestSettings(Frozen):
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


class FrameSettings(Frozen):
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


class LimitSettings(Frozen):
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


class RulesSettings(Frozen):
    packs: list[str] = Field(
        default_factory=lambda: ["cn-auto", "eu-gdpr"],
        description="rule packs in force: built-in names or paths to YAML files; one per jurisdiction",
    )
    enable_unconfirmed: list[str] = Field(
        default_factory=list,
        description="ids of rules resting on unconfirmed [U] facts to switch on (held back by default)",
    )


class RetentionSettings(Frozen):
    interval_s: int = Field(
        default=3600, ge=0, description="how often `onshore serve` runs the retention job (seconds; 0 = never)"
    )


class BusSettings(Frozen):
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
    fetch_batch: int = Field(
        default=8, ge=1, le=256, description="batches a worker takes from the stream at once (and commits together)"
    )
    receipt_ttl_s: int = Field(
        default=86400, ge=60, description="how long a receipt (pending, its answer or its error) can be fetched"
    )
    publish_timeout_s: float = Field(
        default=10, gt=0, le=300, description="how long a gateway waits for JetStream to confirm a publish (503 after)"
    )


class RegionSettings(Frozen):
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


class ProcessorSettings(Frozen):
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


class TokenSettings(Frozen):
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
