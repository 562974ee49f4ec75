"""Sync workers over MQTT for tests and benches, built in one step as the agent builds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.buffer import Buffer
from edge.sync.config import SyncConfig
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from edge.sync.transport import Transport
from edge.sync.worker import SyncWorker


def mqtt_sync(
    buf: Buffer,
    host: str,
    port: int,
    ident: Identity,
    config: SyncConfig,
    *,
    then: Sequence[Transport] = (),
    **transport: Any,
) -> tuple[SyncWorker, MqttTransport]:
    """A worker over an MQTT transport whose acks reach it (none come before it sends),
    then the transports ``then`` (an HTTP fall-back)."""
    worker: SyncWorker | None = None

    def on_ack(payload: bytes) -> None:
        if worker is not None:
            worker.handle_mqtt_ack(payload)

    t = MqttTransport(host, port, ident, on_ack=on_ack, **transport)
    worker = SyncWorker(buf, [t, *then], config=config)
    return worker, t
