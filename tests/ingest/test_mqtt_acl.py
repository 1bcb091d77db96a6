"""The broker decides which gateway a client is: a Mosquitto of its own, started with the worked example of
docs/examples/mosquitto (its mosquitto.conf without TLS, its acl file as it is), passwords per client.

A gateway publishes under its own base and its vehicles' data is stored; what it publishes under another
gateway's base never reaches onshore; a client without credentials is not let in; onshore logs in as its own
user, whose password comes from the environment.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from onshore.config import load_settings
from tests.conftest import CN_VIN, CN_VIN_2, Workspace
from tests.ingest.mqtt_support import subscribed, wait_for

pytestmark = pytest.mark.services
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mosquitto"
PASSWORDS = {"onshore": "onshore-pw", "gateway": "gateway-pw", "other": "other-pw"}


@pytest.fixture
def private_broker() -> Iterator[int]:
    """A Mosquitto on a free loopback port, configured from the docs' example; skipped when the binary is missing,
    except in CI where that fails."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists() or not shutil.which("mosquitto_passwd"):
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto and mosquitto_passwd are required in CI")
        pytest.skip("mosquitto is not installed")
    folder = Path(tempfile.mkdtemp(prefix="onshore-mosquitto-"))
    folder.chmod(0o755)  # mosquitto may drop root for its own user, which must still read these files
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    passwd = folder / "passwd"
    for user, password in PASSWORDS.items():
        create = ["-c"] if not passwd.exists() else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    shutil.copy(EXAMPLE / "acl", folder / "acl")
    lines = []
    for line in (EXAMPLE / "mosquitto.conf").read_text().splitlines():
        if line.startswith(("certfile", "keyfile", "cafile")):
            continue  # the example's TLS: this broker listens on loopback without it
        line = line.replace("/etc/mosquitto/onshore/", f"{folder}/").replace("/var/lib/mosquitto/", f"{folder}/")
        lines.append(f"listener {port} 127.0.0.1" if line.startswith("listener ") else line)
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    for path in folder.iterdir():
        path.chmod(0o644)
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([mosquitto, "-c", str(folder / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((folder / "mosquitto.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _client(port: int, user: str | None) -> tuple[paho.Client, list[bool]]:
    """A connected publisher as ``user``, and the failure flag of each PUBACK it got."""
    acks: list[bool] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_publish = lambda _c, _u, _mid, reason, _p: acks.append(reason.is_failure)
    if user is not None:
        client.username_pw_set(user, PASSWORDS[user])
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, acks


def test_the_broker_s_acl_makes_the_topic_s_gateway_the_authenticated_user(
    workspace: Workspace, private_broker: int
) -> None:
    ws = workspace
    port = private_broker
    ws.runtime.vehicles.add(CN_VIN, "CN", gateway="gateway")
    ws.runtime.vehicles.add(CN_VIN_2, "CN", gateway="gateway")
    env = {"ONSHORE_MQTT__PASSWORD": PASSWORDS["onshore"]}
    mqtt = {"port": port, "username": "onshore", "client_id": "onshore-acl", "session_expiry_s": 60}
    settings = load_settings(ws.config, env=env, overrides={"mqtt": mqtt})
    assert settings.mqtt.topic_root == "fleet"  # the example's ACL is written for the default root
    store = ws.runtime.regions["cn"].store
    with subscribed(settings, ws.runtime):
        gateway, gateway_acks = _client(port, "gateway")
        impostor, impostor_acks = _client(port, "other")
        try:
            impostor.publish(f"fleet/gateway/{CN_VIN_2}/v/Odometer", b"1", qos=1).wait_for_publish(5)
            gateway.publish(f"fleet/other/{CN_VIN_2}/v/Odometer", b"2", qos=1).wait_for_publish(5)
            gateway.publish(f"fleet/gateway/{CN_VIN}/v/Odometer", b"3", qos=1).wait_for_publish(5)
            wait_for(lambda: len(gateway_acks) == 2 and len(impostor_acks) == 1, what="the PUBACKs")
            wait_for(lambda: store.count_records() >= 1, what="the gateway's own datum")
            time.sleep(0.3)  # what the broker let through has arrived by now
        finally:
            for client in (gateway, impostor):
                client.disconnect()
                client.loop_stop()
    assert store.count_records() == 1
    # the broker answers a publish outside the user's base with "Not authorized" (MQTT 5) and drops it
    assert impostor_acks == [True] and gateway_acks == [True, False]
    anonymous = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    refused = threading.Event()
    anonymous.on_connect = lambda _c, _u, _f, reason, _p: refused.set() if reason.is_failure else None
    anonymous.connect("127.0.0.1", port)
    anonymous.loop_start()
    try:
        assert refused.wait(5), "a client without credentials was let in"
    finally:
        anonymous.loop_stop()
