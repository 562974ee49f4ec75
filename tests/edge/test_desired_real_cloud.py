"""Desired state from the real cloud to a unit: retained over MQTT, polled over HTTP.

The cloud app runs under uvicorn on loopback with a real SQLite store and a real
Mosquitto; an operator PUTs desired state and a unit agent picks it up live.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.desired_publish import DesiredPublisher
from cloud.keys import Role
from cloud.settings import build_settings
from edge.agent import Agent
from edge.config import parse_config
from edge.sync.identity import Identity
from models.wire import topic
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.support.mosquitto import Broker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mqtt

DEVICE = "unit-q"
DESIRED = {"config": {"sync.batch_size": 50}, "model_version": 4}


@contextmanager
def cloud(tmp_path: Path, broker: Broker | None) -> Iterator[tuple[Live, httpx.Client, str]]:
    """The app (publishing to ``broker`` when given), an operator client and a unit key."""
    extra: dict[str, Any] = {}
    if broker is not None:
        extra = {"mqtt_host": broker.host, "mqtt_port": broker.port}
    settings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, **extra
    )
    with serve(settings) as live:
        unit_key = register_unit(live.store, DEVICE)
        publisher = live.server.config.app.state.desired_publisher
        if broker is None:
            assert publisher is None
        else:
            assert isinstance(publisher, DesiredPublisher)
            assert publisher.connected.wait(10), "publisher did not connect"
        with live.client(make_key(live.store, Role.OPERATOR)) as op:
            yield live, op, unit_key


def retained(broker: Broker, name: str) -> dict[str, Any]:
    """The retained message on ``name``, read by a client that subscribes now."""
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, msg: got.put(msg)
    sub.connect(broker.host, broker.port)
    sub.subscribe(name, qos=1)
    sub.loop_start()
    try:
        msg = got.get(timeout=10)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert msg.retain and msg.qos == 1
    doc: dict[str, Any] = json.loads(msg.payload)
    return doc


def unit_agent(tmp_path: Path, broker: Broker, mode: str, base_url: str, key: str) -> Agent:
    cfg = parse_config(
        {
            "unit": {"device_id": DEVICE, "data_dir": str(tmp_path / "unit")},
            "sync": {
                "mode": mode,
                "base_url": base_url,
                "mqtt_host": broker.host,
                "mqtt_port": broker.port,
                "desired_poll_s": 0.2,
            },
        }
    )
    return Agent(cfg, identity=Identity(device_id=DEVICE, api_key=key))


def test_put_desired_is_retained_on_the_broker(tmp_path: Path, mosquitto: Broker) -> None:
    with cloud(tmp_path, mosquitto) as (_live, op, _key):
        put = op.put(f"/v1/devices/{DEVICE}/desired", json=DESIRED)
        assert put.status_code == 200, put.text
        body = op.get(f"/v1/devices/{DEVICE}/desired").json()
        assert retained(mosquitto, topic(DEVICE, "desired")) == body == put.json()
        assert body["config"] == {"sync.batch_size": 50} and body["model_version"] == 4


def test_put_succeeds_when_the_broker_is_away(tmp_path: Path, mosquitto: Broker) -> None:
    with cloud(tmp_path, mosquitto) as (live, op, _key):
        publisher = live.server.config.app.state.desired_publisher
        mosquitto.stop()
        wait_until(lambda: not publisher.connected.is_set())
        put = op.put(f"/v1/devices/{DEVICE}/desired", json=DESIRED)
        assert put.status_code == 200, put.text
        assert publisher.failed == 1 and publisher.published == 0
        assert op.get(f"/v1/devices/{DEVICE}/desired").json()["config"] == DESIRED["config"]


def test_unit_in_mqtt_mode_applies_desired_from_the_cloud(
    tmp_path: Path, mosquitto: Broker
) -> None:
    with cloud(tmp_path, mosquitto) as (_live, op, key):
        # the unit's HTTP address is unreachable: desired state can only come over MQTT
        agent = unit_agent(tmp_path, mosquitto, "mqtt", "http://127.0.0.1:9", key)
        models: list[int] = []
        agent.model_hooks.append(models.append)
        agent.start()
        try:
            assert agent.config.sync.batch_size != 50
            put = op.put(f"/v1/devices/{DEVICE}/desired", json=DESIRED)
            assert put.status_code == 200, put.text
            wait_until(lambda: agent.config.sync.batch_size == 50)
            assert agent.sync is not None and agent.sync.config.batch_size == 50
            wait_until(lambda: models == [4])
        finally:
            agent.stop()


def test_unit_in_both_mode_polls_desired_over_http(tmp_path: Path, mosquitto: Broker) -> None:
    # the cloud has no broker: in mode "both" the unit must still get it over HTTP
    with cloud(tmp_path, None) as (live, op, key):
        agent = unit_agent(tmp_path, mosquitto, "both", live.url, key)
        agent.start()
        try:
            put = op.put(f"/v1/devices/{DEVICE}/desired", json=DESIRED)
            assert put.status_code == 200, put.text
            wait_until(lambda: agent.config.sync.batch_size == 50)
            assert agent.sync is not None and agent.sync.config.batch_size == 50
        finally:
            agent.stop()
