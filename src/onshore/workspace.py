"""`onshore init`: write a commented onshore.toml and create the regions' stores."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from onshore.config import DEFAULT_CONFIG_NAME, default_regions_toml
from onshore.errors import ConflictError

API_TOKEN_PREFIX = "ons_"

_HEADER = """# onshore configuration.
# Precedence: CLI flag > ONSHORE_* environment variable > this file > default.
# Environment keys use "__" between levels, e.g. ONSHORE_SERVER__PORT=9000,
# ONSHORE_REGIONS__CN__RECORD_STORE=postgresql+psycopg://onshore@db.cn.internal/onshore.
# `onshore config` lists every setting with its meaning.

[server]
# Loopback by default; put a TLS-terminating proxy in front for vehicles on the network.
host = "127.0.0.1"
port = 8470

[ingest]
max_body_bytes = 8388608     # largest request body (8 MiB)
max_batch_records = 5000     # most records in one batch
max_value_bytes = 4096       # largest JSON-encoded value of one record

[rules]
# Rule packs in force, one per jurisdiction: built-in names or paths to YAML files.
packs = ["cn-auto", "eu-gdpr"]
# Rules resting on unconfirmed [U] facts are held back; list rule ids here to switch them on.
enable_unconfirmed = []
"""


@dataclass(frozen=True)
class IssuedApiToken:
    name: str
    role: str
    region: str | None
    token: str


def new_api_token() -> tuple[str, str]:
    """A fresh API token and its SHA-256 (only the hash is written to the config)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(24)
    return token, hashlib.sha256(token.encode()).hexdigest()


def token_toml(name: str, role: str, sha256: str, region: str | None) -> str:
    lines = ["", "[[tokens]]", f'name = "{name}"', f'role = "{role}"', f'sha256 = "{sha256}"']
    if region:
        lines.append(f'region = "{region}"')
    return "\n".join(lines) + "\n"


def init_workspace(
    folder: Path, *, force: bool = False, data_dir: str = "onshore-data"
) -> tuple[Path, list[IssuedApiToken]]:
    """Write ``folder/onshore.toml`` with two regions (cn, eu) and one token per API role (a gateway's included).

    Provisions every region's keys in its key store (``onshore keys provision``). Returns the config path and
    the issued tokens (shown once; only hashes are stored).

    Raises:
        ConflictError: a config exists and ``force`` is false.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEFAULT_CONFIG_NAME
    if path.exists() and not force:
        raise ConflictError(f"{path} exists; pass --force to overwrite it")
    issued: list[IssuedApiToken] = []
    parts = [_HEADER, default_regions_toml(data_dir), "\n# API tokens: only their SHA-256 is kept here.\n"]
    for name, role, region in (
        ("officer", "officer", None),
        ("auditor", "auditor", None),
        ("gateway", "gateway", None),
        ("analyst-cn", "analyst", "cn"),
        ("analyst-eu", "analyst", "eu"),
        ("monitor", "monitor", None),
    ):
        token, digest = new_api_token()
        issued.append(IssuedApiToken(name=name, role=role, region=region, token=token))
        parts.append(token_toml(name, role, digest, region))
    path.write_text("".join(parts), encoding="utf-8")
    # Every key a region needs exists from the start (a backup of the key folder taken now is complete).
    from onshore.config import load_settings
    from onshore.keys_cli import provision_keys

    provision_keys(load_settings(path))
    return path, issued
