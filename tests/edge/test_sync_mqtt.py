"""MQTT sync against a real Mosquitto and the real cloud: its MQTT ingest workers store and ack.

The cloud (:mod:`tests.edge.real_cloud`) is a fresh SQLite store with real
:class:`cloud.mqtt_ingest.IngestWorker` processes on the broker's shared subscription
(started once subscribed) and, where a test needs it, ``shelfsense cloud serve``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.sync.config import SyncConfig
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from edge.sync.transport import SyncUnavailable, Transport
from edge.sync.worker import SyncWorker
from models.wire import MqttAck, topic
from tests.edge.conftest import Buffers
from tests.edge.events_support import event_fields
from tests.edge.real_cloud import real_cloud, real_event
from tests.edge.sync_support import mqtt_sync
from tests.support.mosquitto import Broker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mqtt

DEVICE = "unit-m"


class Watcher:
    """A plain subscriber recording what arrives on some topics (retained included)."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.got.append(
            (m.topic, bytes(m.payload), m.retain)
        )
        subacks: list[int] = []
        self.client.on_subscribe = lambda c, u, mid, codes, p: subacks.append(mid)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        mids = [self.client.subscribe(t, qos=1)[1] for t in topics]
        wait_until(lambda: set(mids) <= set(subacks), timeout=10)  # SUBACK for every topic

    def payloads(self, t: str) -> list[bytes]:
        return [p for tt, p, _ in self.got if tt == t]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make(
    buf: Buffer,
    broker: Broker,
    *,
    then: Sequence[Transport] = (),
    key: str | None = None,
    **cfg: object,
) -> tuple[SyncWorker, MqttTransport]:
    settings = {"mode": "mqtt", "mqtt_port": broker.port, "batch_size": 100, "idle_s": 0.02}
    settings |= {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "ack_timeout_s": 2.0}
    config = SyncConfig(**(settings | cfg))  # type: ignore[arg-type]
    ident = Identity(device_id=DEVICE, api_key=key or "")
    worker, t = mqtt_sync(
        buf, broker.host, broker.port, ident, config, then=then, keepalive_s=5, reconnect_max_s=1
    )
    assert t.wait_connected(10)
    return worker, t


def run(worker: SyncWorker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    return stop, th


def test_events_acked_by_cloud_leave_outbox_and_status_is_retained(
    tmp_path: Path, mosquitto: Broker, buffers: Buffers
) -> None:
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=1, start=False) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(300)])
        worker, t = make(buf, mosquitto, key=key)
        stop, th = run(worker)
        wait_until(lambda: buf.stats().depth == 0)
        stop.set()
        th.join(5)
        assert cloud.seqs(DEVICE) == list(range(1, 301))
        watcher = Watcher(mosquitto, topic(DEVICE, "status"))
        wait_until(lambda: bool(watcher.got))
        assert watcher.got[-1][1:] == (b"online", True)
        t.close()
        wait_until(lambda: watcher.payloads(topic(DEVICE, "status"))[-1] == b"offline")
        watcher.close()


def test_last_will_offline_when_the_unit_vanishes(
    tmp_path: Path, mosquitto: Broker, buffers: Buffers
) -> None:
    buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
    _, t = make(buf, mosquitto)
    watcher = Watcher(mosquitto, topic(DEVICE, "status"))
    wait_until(lambda: watcher.payloads(topic(DEVICE, "status")) == [b"online"])
    t.client.loop_stop()
    sock = t.client.socket()
    assert sock is not None
    sock.close()  # no DISCONNECT: the broker must publish the will
    wait_until(lambda: watcher.payloads(topic(DEVICE, "status"))[-1:] == [b"offline"])
    watcher.close()


def test_broker_puback_is_not_an_ack(tmp_path: Path, mosquitto: Broker, buffers: Buffers) -> None:
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=0, start=False) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(20)])
        worker, t = make(buf, mosquitto, key=key, ack_timeout_s=0.3)
        with pytest.raises(SyncUnavailable):  # broker took them (PUBACK), no cloud ack came
            worker.step()
        assert buf.stats().depth == 20 and worker.health.counter("ack_timeouts") == 1
        cloud.start_ingest(1)  # the cloud's ingest comes up
        stop, th = run(worker)
        wait_until(lambda: buf.stats().depth == 0)
        stop.set()
        th.join(5)
        assert cloud.seqs(DEVICE) == list(range(1, 21))
        t.close()


def test_bad_acks_are_counted_and_ignored(
    tmp_path: Path, mosquitto: Broker, buffers: Buffers
) -> None:
    buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(10)])
    worker, t = make(buf, mosquitto, ack_timeout_s=0.5)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    ack_topic = topic(DEVICE, "ack")
    pub.publish(ack_topic, b"{not json", qos=1).wait_for_publish(5)
    other = MqttAck(device_id="someone-else", highest_contiguous=10, stored=[1, 2])
    pub.publish(ack_topic, other.model_dump_json(), qos=1).wait_for_publish(5)
    never_sent = MqttAck(device_id=DEVICE, highest_contiguous=0, stored=[3, 4])
    pub.publish(ack_topic, never_sent.model_dump_json(), qos=1).wait_for_publish(5)
    wait_until(lambda: worker.health.counter("acks_unknown") == 2)
    assert worker.health.counter("acks_malformed") == 1
    assert worker.health.counter("acks_foreign") == 1
    assert buf.stats().depth == 10  # nothing lost
    pub.disconnect()
    pub.loop_stop()
    t.close()


def test_broker_restart_mid_sync_resends_unacked(
    tmp_path: Path, mosquitto: Broker, buffers: Buffers
) -> None:
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=1, start=False) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(2000)])
        worker, t = make(buf, mosquitto, key=key, batch_size=100, ack_timeout_s=1.0)
        stop, th = run(worker)
        wait_until(lambda: cloud.count(DEVICE) >= 300)
        mosquitto.stop()
        mid = cloud.count(DEVICE)
        for i in range(10):  # deciding goes on during the outage
            buf.append_many([real_event(2000 + i)])
        mosquitto.start()
        wait_until(lambda: buf.stats().depth == 0, timeout=60)
        stop.set()
        th.join(5)
        assert mid < 2010
        assert cloud.seqs(DEVICE) == list(range(1, 2011))  # every event, once
        t.close()


def test_both_mode_falls_back_to_http_when_cloud_acks_stop(
    tmp_path: Path, mosquitto: Broker, buffers: Buffers
) -> None:
    from edge.sync.http import HttpTransport

    # the HTTP API runs, no MQTT ingest: the broker PUBACKs, nobody acks
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=0) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(50)])
        http = HttpTransport(cloud.url, Identity(device_id=DEVICE, api_key=key))
        worker, t = make(
            buf, mosquitto, then=[http], key=key, mode="both", ack_timeout_s=0.3, batch_size=20
        )
        stop, th = run(worker)
        wait_until(lambda: buf.stats().depth == 0)
        stop.set()
        th.join(5)
        assert worker.health.counter("ack_timeouts") >= 1
        assert cloud.seqs(DEVICE) == list(range(1, 51))
        t.close()
