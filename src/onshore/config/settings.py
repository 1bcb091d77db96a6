"""The root of the settings: every section, the regions and tokens, their cross-checks, and the list of keys."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from onshore.config.mqtt import MqttSettings
from onshore.config.sections import (
    BusSettings,
    FrameSettings,
    Frozen,
    IngestSettings,
    LimitSettings,
    ProcessorSettings,
    RegionSettings,
    RetentionSettings,
    RulesSettings,
    ServerSettings,
    TokenSettings,
)


class Settings(Frozen):
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
