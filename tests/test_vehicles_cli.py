"""Gateways from the CLI as an operator sets them up: add a gateway token, register vehicles to it, list them, and
the token then speaks for exactly those vehicles over the API."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore.cli import app
from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.web.app import create_app
from onshore.workspace import init_workspace
from tests.conftest import CN_VIN, CN_VIN_2, EU_VIN, auth
from tests.ingest import ft_payloads as ft

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_gateway_added_on_the_cli_speaks_for_the_vehicles_registered_to_it(tmp_path: Path) -> None:
    config, _issued = init_workspace(tmp_path)
    Runtime(load_settings(config, env={}), create=True).close()  # as `onshore init` does
    c = str(config)
    code, out = _cli("gateway", "add", "fleet-cn", "-c", c, "--json")
    assert code == 0, out
    token = json.loads(out)["token"]
    assert token not in config.read_text() and "fleet-cn" in config.read_text()  # only the hash is written
    assert _cli("gateway", "add", "fleet-cn", "-c", c)[0] == 2  # a name once
    assert _cli("gateway", "add", "Fleet CN", "-c", c)[0] == 2  # a plain name

    code, out = _cli("vehicle", "add", "--vin", CN_VIN, "--market", "CN", "--gateway", "fleet-cn", "-c", c, "--json")
    assert code == 0, out
    assert json.loads(out)["gateway"] == "fleet-cn"
    assert _cli("vehicle", "add", "--vin", CN_VIN_2, "--market", "CN", "-c", c)[0] == 0
    assert _cli("vehicle", "add", "--vin", EU_VIN, "--market", "EU", "--gateway", "fleet-cn", "-c", c)[0] == 0
    code, out = _cli("vehicle", "add", "--vin", "LSVM0TEST00000009", "--market", "CN", "--gateway", "nobody", "-c", c)
    assert code == 2 and "no gateway token named 'nobody'" in out and "fleet-cn" in out

    code, out = _cli("vehicle", "list", "--gateway", "fleet-cn", "-c", c, "--json")
    listed = json.loads(out)["vehicles"]
    assert sorted(v["region"] for v in listed) == ["cn", "eu"] and all(v["gateway"] == "fleet-cn" for v in listed)
    assert CN_VIN not in out and EU_VIN not in out  # pseudonyms only
    code, out = _cli("vehicle", "assign", "--vin", CN_VIN_2, "--gateway", "fleet-cn", "-c", c)
    assert code == 0, out
    assert _cli("vehicle", "assign", "--vin", EU_VIN, "--no-gateway", "-c", c)[0] == 0
    assert _cli("vehicle", "assign", "--vin", EU_VIN, "-c", c)[0] == 2  # neither --gateway nor --no-gateway
    assert (
        _cli("vehicle", "assign", "--vin", "LSVM0TEST00000009", "--gateway", "fleet-cn", "-c", c)[0] == 2
    )  # not registered
    code, out = _cli("gateway", "list", "-c", c, "--json")
    counts = {g["name"]: g["vehicles"] for g in json.loads(out)["gateways"]}
    assert counts == {"fleet-cn": 2, "gateway": 0}

    runtime = Runtime(load_settings(config, env={}))
    try:
        with TestClient(create_app(runtime)) as client:
            for vin, status in ((CN_VIN, 200), (CN_VIN_2, 200), (EU_VIN, 403)):
                body = ft.payload([ft.datum("VehicleSpeed", "double_value", 1.0)], vin=vin).SerializeToString()
                response = client.post(
                    "/v1/ingest/fleet-telemetry",
                    content=body,
                    headers={**auth(token), "Content-Type": "application/x-protobuf"},
                )
                assert response.status_code == status, response.text
    finally:
        runtime.close()
