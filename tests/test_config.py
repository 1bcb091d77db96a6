"""Configuration: init, precedence, refusal of invalid config with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from onshore.config import load_settings, settings_documentation
from onshore.errors import ConfigError
from onshore.workspace import init_workspace

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_init_writes_two_regions_and_hashed_tokens(tmp_path: Path) -> None:
    path, tokens = init_workspace(tmp_path)
    settings = load_settings(path, env={})
    assert {n: r.jurisdiction for n, r in settings.regions.items()} == {"cn": "CN", "eu": "EU"}
    assert settings.regions["cn"].location == "cn-guizhou"
    text = path.read_text()
    assert all(t.token not in text for t in tokens)
    assert {t.role for t in settings.tokens} == {"officer", "auditor", "analyst", "monitor", "gateway"}


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    with pytest.raises(Exception, match="--force"):
        init_workspace(tmp_path)


def test_environment_overrides_file(tmp_path: Path) -> None:
    path, _ = init_workspace(tmp_path)
    settings = load_settings(path, env={"ONSHORE_SERVER__PORT": "9123", "ONSHORE_INGEST__MAX_BATCH_RECORDS": "7"})
    assert settings.server.port == 9123 and settings.ingest.max_batch_records == 7


def test_cli_override_beats_environment(tmp_path: Path) -> None:
    path, _ = init_workspace(tmp_path)
    settings = load_settings(path, env={"ONSHORE_SERVER__PORT": "9123"}, overrides={"server": {"port": 9999}})
    assert settings.server.port == 9999


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda t: t.replace("port = 8470", 'port = "abc"'), "server.port", "integer"),
        (
            lambda t: t.replace('jurisdiction = "CN"', 'jurisdiction = "china"'),
            "regions.cn.jurisdiction",
            "pattern",
        ),
        (lambda t: t.replace("[regions.cn]", "[regions.CN_bad]"), "regions", "lower-case"),
        (
            lambda t: t.replace("max_batch_records = 5000", "max_batch_records = 0"),
            "ingest.max_batch_records",
            "greater",
        ),
        (lambda t: t + "\n[server2]\nx = 1\n", "server2", "Extra inputs"),
        (lambda t: t.replace('region = "cn"', 'region = "mars"'), "(top level)", "not configured"),
    ],
)
def test_invalid_config_is_refused_with_file_key_and_reason(tmp_path: Path, edit, key: str, reason: str) -> None:
    path, _ = init_workspace(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert str(path) in message and key in message and reason in message


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "nope.toml", env={})
    bad = tmp_path / "onshore.toml"
    bad.write_text("[server\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})


def test_every_setting_is_described_and_documented() -> None:
    docs = settings_documentation()
    assert docs, "no settings found"
    undocumented = [k for k, v in docs.items() if not v]
    assert not undocumented, f"settings without a description: {undocumented}"
    text = DOCS.read_text()
    missing = [k for k in docs if f"`{k}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
