"""`onshore mqtt`: run the MQTT subscriber of one process until SIGTERM or Ctrl-C (see docs/mqtt.md)."""

from __future__ import annotations

import logging.config
import signal
from typing import Annotated, Any

import typer

from onshore.cli_support import ConfigOption, cli_errors

ClientIdOption = Annotated[
    str | None,
    typer.Option("--client-id", help="this process's MQTT client id (overrides mqtt.client_id): one per process"),
]


def mqtt(
    config: ConfigOption = None,
    client_id: ClientIdOption = None,
    host: Annotated[str | None, typer.Option(help="override mqtt.host")] = None,
    port: Annotated[int | None, typer.Option(help="override mqtt.port")] = None,
) -> None:
    """Subscribe to the fleet's MQTT topics and ingest what they carry, until stopped (SIGTERM, Ctrl-C).

    Each message is acknowledged after its batch is committed; run several processes, each with its own
    --client-id, to split the load (they share mqtt.share_group).

    Example: onshore mqtt -c onshore.toml --client-id onshore-mqtt-1
    """
    from prometheus_client import start_http_server

    from onshore.config import load_settings
    from onshore.ingest.mqtt import MqttSubscriber
    from onshore.runtime import Runtime
    from onshore.web.logs import log_config

    with cli_errors():
        given = (("host", host), ("port", port), ("client_id", client_id))
        overrides: dict[str, Any] = {"mqtt": {k: v for k, v in given if v is not None}}
        settings = load_settings(config, overrides=overrides)
        runtime = Runtime(settings)
    logging.config.dictConfig(log_config("info"))
    try:
        subscriber = MqttSubscriber(
            settings,
            ingest_vehicles=runtime.ingest.ingest_vehicles,
            speaking_for=runtime.vehicles.speaking_for,
            metrics=runtime.metrics,
        )
        if settings.mqtt.metrics_port:
            start_http_server(settings.mqtt.metrics_port, settings.server.host, registry=runtime.metrics.registry)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: subscriber.stop())
        subscriber.run()
    finally:
        runtime.close()
