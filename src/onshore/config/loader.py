"""The config file: where it is, what a fresh one holds, and loading it with the ``ONSHORE_*`` overrides.

Environment keys use ``__`` between levels: ``ONSHORE_SERVER__PORT=9000``,
``ONSHORE_REGIONS__CN__RECORD_STORE=postgresql+psycopg://…``, ``ONSHORE_INGEST__MAX_BATCH_RECORDS=2000``.
Relative paths in store URLs are resolved against the folder holding the config file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from onshore.config.settings import Settings
from onshore.errors import ConfigError

ENV_PREFIX = "ONSHORE_"
DEFAULT_CONFIG_NAME = "onshore.toml"


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
