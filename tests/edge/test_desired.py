"""Desired state: validated, applied live through callbacks; bad documents counted and ignored."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import Config, parse_config
from edge.desired import DesiredPoller, DesiredStateHandler, merge
from edge.health import Health
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from models.wire import topic
from tests.edge.real_cloud import real_cloud
from tests.support.mosquitto import Broker

DEVICE = "unit-d"
T1, T2 = "2026-12-05T07:00:00", "2026-12-05T07:00:01"


def handler() -> tuple[DesiredStateHandler, list[Config], list[int]]:
    configs: list[Config] = []
    models: list[int] = []
    config = parse_config({"unit": {"device_id": DEVICE}})
    h = DesiredStateHandler(
        config, health=Health(), on_config=configs.append, on_model=models.append
    )
    return h, configs, models


def doc(**kw: Any) -> bytes:
    return json.dumps({"device_id": DEVICE, **kw}).encode()


def test_config_change_applied_live_and_model_handed_over() -> None:
    h, configs, models = handler()
    assert h.handle(doc(updated_at=T1, model_version=3, config={"sync.batch_size": 50}))
    assert configs[-1].sync.batch_size == 50
    assert configs[-1].unit.device_id == DEVICE  # the rest kept
    assert models == [3]
    assert not h.handle(doc(updated_at=T1, model_version=3, config={"sync.batch_size": 50}))
    assert h.handle(doc(updated_at=T2, model_version=4))
    assert models == [3, 4] and len(configs) == 1


@pytest.mark.parametrize(
    ("payload", "counter"),
    [
        (b"{oops", "desired_malformed"),
        (json.dumps({"device_id": DEVICE, "surprise": 1}).encode(), "desired_malformed"),
        (
            json.dumps({"device_id": "other-unit", "model_version": 9}).encode(),
            "desired_unauthorised",
        ),
        (doc(config={"unit.device_id": "stolen"}), "desired_unauthorised"),
        (doc(config={"sync.batch_size": -1}), "desired_invalid"),
        (doc(config={"sync.no_such_key": 1}), "desired_invalid"),
        (doc(config={"sync": {"batch_size": 1}}), "desired_malformed"),  # nested: not the dialect
        (doc(rev=1, model_version=2), "desired_malformed"),  # revisions: not the dialect
    ],
)
def test_bad_documents_are_counted_and_ignored(payload: bytes, counter: str) -> None:
    h, configs, models = handler()
    before = h.config
    assert not h.handle(payload)
    assert h.health.counter(counter) == 1
    assert h.config == before and configs == [] and models == []


def test_older_document_ignored() -> None:
    h, _, _ = handler()
    assert h.handle(doc(updated_at=T2, config={"health.interval_s": 10}))
    assert not h.handle(doc(updated_at=T1, config={"health.interval_s": 99}))
    assert h.config.health.interval_s == 10
    assert h.health.counter("desired_stale") == 1


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["sync.", "buffer.", "unit.", "model.", ""]).flatmap(
            lambda p: st.text(max_size=8).map(lambda k: p + k)
        ),
        st.integers() | st.text(max_size=5) | st.floats() | st.booleans(),
        max_size=4,
    )
)
def test_arbitrary_config_overrides_never_crash(overrides: dict[str, Any]) -> None:
    h, _, _ = handler()
    before = h.config
    changed = h.handle(doc(updated_at=T1, config=overrides))
    if not changed:
        assert h.config == before
    else:
        assert h.config.unit == before.unit


def test_merge_is_deep_and_copies() -> None:
    base: dict[str, Any] = {"a": {"b": 1, "c": [1]}, "d": 2}
    out = merge(base, {"a": {"b": 5}})
    assert out == {"a": {"b": 5, "c": [1]}, "d": 2} and base["a"]["b"] == 1


def test_poll_over_http(tmp_path: Path) -> None:
    with real_cloud(tmp_path) as cloud:
        ident = Identity(device_id=DEVICE, api_key=cloud.register(DEVICE))
        h, _, models = handler()
        poller = DesiredPoller(HttpTransport(cloud.url, ident).get_desired, h, interval_s=1)
        assert not poller.poll_once()  # nothing desired yet (404)
        cloud.put_desired(DEVICE, {"model_version": 2})
        assert poller.poll_once() and models == [2]
        assert not poller.poll_once()  # same document
        cloud.stop()
        assert not poller.poll_once()
        assert h.health.counter("desired_poll_failures") == 1


@pytest.mark.mqtt
def test_retained_desired_over_mqtt(mosquitto: Broker) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    body = doc(updated_at=T1, model_version=7, config={"sync.live_age_s": 30})
    pub.publish(topic(DEVICE, "desired"), body, qos=1, retain=True).wait_for_publish(5)
    h, configs, models = handler()
    t = MqttTransport(
        mosquitto.host,
        mosquitto.port,
        Identity(device_id=DEVICE),
        on_desired=h.handle,
    )
    deadline = time.monotonic() + 10
    while not models and time.monotonic() < deadline:
        time.sleep(0.02)
    assert models == [7] and configs[-1].sync.live_age_s == 30
    pub.publish(topic(DEVICE, "desired"), b"garbage", qos=1, retain=True).wait_for_publish(5)
    deadline = time.monotonic() + 10
    while not h.health.counter("desired_malformed") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert h.health.counter("desired_malformed") == 1 and models == [7]
    t.close()
    pub.disconnect()
    pub.loop_stop()
