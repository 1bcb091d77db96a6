"""The ``[mqtt]`` section: the broker `onshore mqtt` reads, the topics it takes, how it batches."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from onshore.config.sections import Frozen


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


class MqttSettings(Frozen):
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
        pattern=r"^[A-Za-z0-9_-]{0,64}$",
        description="MQTT 5 shared-subscription group ($share/<group>/...): the processes of one group split "
        "the messages between them; empty: plain subscriptions, for a single `onshore mqtt` process (Mosquitto "
        "does not keep shared subscriptions over a restart of its own: docs/mqtt.md)",
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
    vehicle_rate_per_s: float = Field(
        default=100,
        gt=0,
        description="messages per second one vehicle may send, sustained (token bucket per subscriber process); "
        "over it a message is refused (counted, reported, acknowledged): one vehicle cannot crowd out the others",
    )
    vehicle_burst: int = Field(
        default=1000, ge=1, description="messages one vehicle may send at once above that rate (a reconnect's backlog)"
    )
    gateway_rate_per_s: float = Field(
        default=20_000, gt=0, description="messages per second one gateway's topics may carry, sustained"
    )
    gateway_burst: int = Field(default=40_000, ge=1, description="messages one gateway may send at once above that")
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
