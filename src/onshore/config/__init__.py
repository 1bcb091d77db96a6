"""Settings: one frozen model, loaded from ``onshore.toml`` with environment overrides.

Precedence: CLI flag > ``ONSHORE_*`` environment variable > ``onshore.toml`` > default. Every part of onshore
imports its settings from here:

* ``sections``: one model per ``[section]`` (server, ingest, frames, limits, rules, retention, bus, regions,
  processor, tokens);
* ``mqtt``: the ``[mqtt]`` section and its topic checks;
* ``settings``: ``Settings``, the root, its cross-checks, and ``settings_documentation``;
* ``loader``: finding and reading the file, the ``ONSHORE_*`` overrides, a fresh file's regions.
"""

from onshore.config.loader import DEFAULT_CONFIG_NAME, ENV_PREFIX, default_regions_toml, load_settings
from onshore.config.mqtt import MqttSettings
from onshore.config.sections import (
    BusSettings,
    FrameSettings,
    IngestSettings,
    LimitSettings,
    ProcessorSettings,
    RegionSettings,
    RetentionSettings,
    Role,
    RulesSettings,
    ServerSettings,
    TokenSettings,
)
from onshore.config.settings import Settings, settings_documentation

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "ENV_PREFIX",
    "BusSettings",
    "FrameSettings",
    "IngestSettings",
    "LimitSettings",
    "MqttSettings",
    "ProcessorSettings",
    "RegionSettings",
    "RetentionSettings",
    "Role",
    "RulesSettings",
    "ServerSettings",
    "Settings",
    "TokenSettings",
    "default_regions_toml",
    "load_settings",
    "settings_documentation",
]
