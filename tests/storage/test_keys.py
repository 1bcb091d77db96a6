"""The key-store contract over both backends: the folder (embedded) and the shared key database (SQLite, PG)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from onshore.border.exporter import RECIPIENT_KEY
from onshore.cli import app
from onshore.errors import ConfigError, KeyNotProvisionedError, StorageError
from onshore.ledger.signing import SIGNING_KEY_PREFIX
from onshore.storage.crypto import KEK_NAME
from onshore.storage.keys import REGION_KEYS, FolderKeyStore, KeyStore, env_key_name, key_store_from_url
from tests.conftest import CN_VIN, fresh_pg_database

BACKENDS = ["folder", "sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
runner = CliRunner()


@pytest.fixture
def key_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "folder":
        yield f"file://{tmp_path}/keys"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/keys.sqlite"
    else:
        with fresh_pg_database() as url:
            yield url


def _open(url: str, tmp_path: Path, region: str = "t") -> KeyStore:
    return key_store_from_url(url, base_dir=tmp_path, region=region, config_file=tmp_path / "onshore.toml")


@pytest.mark.parametrize("key_url", BACKENDS, indirect=True)
def test_provision_is_idempotent_and_never_replaces_a_key(key_url: str, tmp_path: Path) -> None:
    store = _open(key_url, tmp_path)
    assert store.provision() == dict.fromkeys(REGION_KEYS, "created")
    first = {name: store.key(name) for name in REGION_KEYS}
    assert all(len(k) == 32 for k in first.values()) and len(set(first.values())) == len(REGION_KEYS)
    store.close()
    again = _open(key_url, tmp_path)  # a fresh instance: no cache
    assert again.provision() == dict.fromkeys(REGION_KEYS, "present")
    assert {name: again.key(name) for name in REGION_KEYS} == first
    assert again.status() == dict.fromkeys(REGION_KEYS, "present")
    assert again.ensure("ledger-signing-v2") not in first.values()  # explicit creation (a rotation)
    third = _open(key_url, tmp_path)
    assert third.key("ledger-signing-v2") == again.ensure("ledger-signing-v2")
    third.close()
    again.close()


@pytest.mark.parametrize("key_url", BACKENDS, indirect=True)
def test_subject_keys_are_created_read_and_destroyed_across_instances(key_url: str, tmp_path: Path) -> None:
    one, two = _open(key_url, tmp_path), _open(key_url, tmp_path)
    one.provision()
    assert one.subject_key_count() == 0
    made = one.keys_for(["sub_a", "sub_b"], create=True)
    assert set(made) == {"sub_a", "sub_b"} and made["sub_a"] != made["sub_b"]
    assert two.keys_for(["sub_a", "sub_b", "sub_c"], create=False) == made  # sub_c is absent, not created
    assert two.exists("sub_a") and not two.exists("sub_c") and two.subject_key_count() == 2
    assert two.keys_for(["sub_a"], create=True) == {"sub_a": made["sub_a"]}  # never replaced
    assert one.keys_for(["sub_a"], create=False) == {"sub_a": made["sub_a"]}  # one has read it once ...
    assert two.destroy("sub_a") is True
    assert one.keys_for(["sub_a", "sub_b"], create=False) == {"sub_b": made["sub_b"]}  # ... and caches nothing
    assert not one.exists("sub_a") and two.destroy("sub_a") is False and one.subject_key_count() == 1
    one.close()
    two.close()


@pytest.mark.parametrize("key_url", BACKENDS, indirect=True)
def test_env_kek_is_used_and_never_written_to_the_store(
    key_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kek = os.urandom(32)
    monkeypatch.setenv(env_key_name("t", KEK_NAME), kek.hex())
    store = _open(key_url, tmp_path)
    done = store.provision()
    assert done[KEK_NAME] == "env" and store.status()[KEK_NAME] == "env" and store.key(KEK_NAME) == kek
    data_key = store.keys_for(["sub_a"], create=True)["sub_a"]
    assert not (tmp_path / "keys" / "kek.key").exists()
    store.close()
    # without the injected KEK the wrapped keys cannot be opened: the store holds only wrapped keys
    monkeypatch.setenv(env_key_name("t", KEK_NAME), os.urandom(32).hex())
    other = _open(key_url, tmp_path)
    with pytest.raises(StorageError, match="does not match the KEK"):
        other.keys_for(["sub_a"], create=False)
    other.close()
    monkeypatch.setenv(env_key_name("t", KEK_NAME), kek.hex())
    third = _open(key_url, tmp_path)
    assert third.keys_for(["sub_a"], create=False) == {"sub_a": data_key}
    third.close()


@pytest.mark.parametrize("key_url", BACKENDS[1:], indirect=True)  # a key folder belongs to one region
def test_regions_sharing_a_key_database_have_their_own_keys(key_url: str, tmp_path: Path) -> None:
    cn, eu = _open(key_url, tmp_path, "cn"), _open(key_url, tmp_path, "eu")
    cn.provision()
    eu.provision()
    assert cn.key("pseudonym") != eu.key("pseudonym")
    cn.keys_for(["sub_a"], create=True)
    assert eu.keys_for(["sub_a"], create=False) == {} and not eu.exists("sub_a")
    cn.close()
    eu.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_a_shared_store_creates_nothing_on_first_use(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        fresh_pg_database() if backend == "postgresql" else contextlib.nullcontext(f"sqlite:///{tmp_path}/keys.sqlite")
    ) as url:
        store = _open(url, tmp_path, "cn")
        command = f"onshore keys provision -c {tmp_path / 'onshore.toml'} --region cn"
        with pytest.raises(KeyNotProvisionedError, match="key 'kek' is not provisioned"):
            store.keys_for(["sub_a"], create=True)
        monkeypatch.setenv(env_key_name("cn", KEK_NAME), os.urandom(32).hex())
        with pytest.raises(KeyNotProvisionedError, match="tables are not provisioned") as no_tables:
            store.keys_for(["sub_a"], create=True)  # the KEK from the KMS, but no table for wrapped keys
        assert command in no_tables.value.message
        monkeypatch.delenv(env_key_name("cn", KEK_NAME))
        with pytest.raises(KeyNotProvisionedError) as missing:
            store.key("pseudonym")
        assert missing.value.message == (
            f"region cn: key 'pseudonym' is not provisioned in the key store; run `{command}`"
        )
        assert store.status() == dict.fromkeys(REGION_KEYS, "missing") and store.subject_key_count() == 0
        store.provision(["kek"])
        with pytest.raises(KeyNotProvisionedError, match="key 'pseudonym' is not provisioned"):
            store.key("pseudonym")  # still not created by asking
        assert store.status()["pseudonym"] == "missing"
        store.close()


def test_the_folder_store_creates_a_missing_key_on_first_use(tmp_path: Path) -> None:
    store = FolderKeyStore(tmp_path / "keys", region="cn")
    key = store.key("pseudonym")
    assert (tmp_path / "keys" / "pseudonym.key").read_text().strip() == key.hex()
    assert (tmp_path / "keys" / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert FolderKeyStore(tmp_path / "keys", region="cn").status()["pseudonym"] == "present"


def test_the_key_store_must_not_be_the_record_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/records.sqlite"
    with pytest.raises(ConfigError, match="separate database"):
        key_store_from_url(url, base_dir=tmp_path, region="cn", record_store="sqlite:///records.sqlite")
    with pytest.raises(ConfigError, match="key_store 'redis://x'"):
        key_store_from_url("redis://x", base_dir=tmp_path, region="cn")


def test_region_keys_name_every_key_the_features_use() -> None:
    assert RECIPIENT_KEY in REGION_KEYS and f"{SIGNING_KEY_PREFIX}1" in REGION_KEYS


def _config(folder: Path, key_store: str, record_store: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "node.toml"
    path.write_text(
        f"""
[rules]
packs = ["cn-auto"]

[regions.cn]
jurisdiction = "CN"
location = "cn-guizhou"
record_store = "{record_store or f"sqlite:///{folder}/records.sqlite"}"
blob_store = "file://{folder}/blobs"
restricted_store = "file://{folder}/restricted"
key_store = "{key_store}"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.services
def test_cli_provision_and_status_on_postgresql(tmp_path: Path) -> None:
    with fresh_pg_database() as keys_url:
        config = _config(tmp_path, keys_url)
        assert runner.invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
        status = runner.invoke(app, ["keys", "status", "-c", str(config), "--json"])
        assert status.exit_code == 1, status.output
        refused = runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
        assert refused.exit_code == 1
        assert f"run `onshore keys provision -c {config} --region cn`" in " ".join(refused.output.split())
        first = runner.invoke(app, ["keys", "provision", "-c", str(config), "--region", "cn", "--json"])
        assert first.exit_code == 0, first.output
        assert '"pseudonym":"created"' in first.stdout
        again = runner.invoke(app, ["keys", "provision", "-c", str(config)])
        assert again.exit_code == 0 and "pseudonym present" in again.stdout
        status = runner.invoke(app, ["keys", "status", "-c", str(config), "--json"])
        assert status.exit_code == 0 and '"provisioned":true' in status.stdout and '"backend":"sql"' in status.stdout
        with psycopg.connect(keys_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            secret = conn.execute("SELECT secret FROM named_keys WHERE name = 'pseudonym'").fetchone()[0]
        assert bytes(secret).hex() not in status.stdout  # status never shows key bytes
        added = runner.invoke(app, ["vehicle", "add", "--vin", CN_VIN, "--market", "CN", "-c", str(config)])
        assert added.exit_code == 0, added.output
        unknown = runner.invoke(app, ["keys", "status", "-c", str(config), "--region", "xx"])
        assert unknown.exit_code == 2 and "'xx' is not configured" in unknown.output


def test_init_provisions_the_folder_keys(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    for region in ("cn", "eu"):
        for name in REGION_KEYS:
            assert (tmp_path / "onshore-data" / region / "keys" / f"{name}.key").is_file()
    status = runner.invoke(app, ["keys", "status", "-c", str(tmp_path / "onshore.toml"), "--json"])
    assert status.exit_code == 0 and '"backend":"folder"' in status.stdout and "missing" not in status.stdout
