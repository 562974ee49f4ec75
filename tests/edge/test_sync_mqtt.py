"""MQTT sync against a real Mosquitto, with a cloud-side subscriber that stores and acks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
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
from tests.edge.cloud_stand_in import IngestStore, MqttIngest
from tests.edge.events_support import event_fields
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
        self.client.connect(broker.host, broker.port)
        for t in topics:
            self.client.subscribe(t, qos=1)
        self.client.loop_start()

    def payloads(self, t: str) -> list[bytes]:
        return [p for tt, p, _ in self.got if tt == t]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make(
    buf: Buffer, broker: Broker, *, then: Sequence[Transport] = (), **cfg: object
) -> tuple[SyncWorker, MqttTransport]:
    settings = {"mode": "mqtt", "mqtt_port": broker.port, "batch_size": 100, "idle_s": 0.02}
    settings |= {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "ack_timeout_s": 2.0}
    config = SyncConfig(**(settings | cfg))  # type: ignore[arg-type]
    ident = Identity(device_id=DEVICE)
    worker, t = mqtt_sync(
        buf, broker.host, broker.port, ident, config, then=then, keepalive_s=5, reconnect_max_s=1
    )
    assert t.wait_connected(10)
    return worker, t


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IngestStore]:
    s = IngestStore(tmp_path / "cloud.db")
    yield s
    s.close()


def run(worker: SyncWorker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    return stop, th


def test_events_acked_by_cloud_leave_outbox_and_status_is_retained(
    tmp_path: Path, mosquitto: Broker, store: IngestStore
) -> None:
    cloud = MqttIngest(store, mosquitto.host, mosquitto.port)
    assert cloud.wait_connected()
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(300)])
    worker, t = make(buf, mosquitto)
    stop, th = run(worker)
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    th.join(5)
    assert store.seqs(DEVICE) == list(range(1, 301))
    watcher = Watcher(mosquitto, topic(DEVICE, "status"))
    wait_until(lambda: bool(watcher.got))
    assert watcher.got[-1][1:] == (b"online", True)
    t.close()
    wait_until(lambda: watcher.payloads(topic(DEVICE, "status"))[-1] == b"offline")
    watcher.close()
    cloud.close()


def test_last_will_offline_when_the_unit_vanishes(tmp_path: Path, mosquitto: Broker) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    _, t = make(buf, mosquitto)
    watcher = Watcher(mosquitto, topic(DEVICE, "status"))
    wait_until(lambda: watcher.payloads(topic(DEVICE, "status")) == [b"online"])
    t.client.loop_stop()
    sock = t.client.socket()
    assert sock is not None
    sock.close()  # no DISCONNECT: the broker must publish the will
    wait_until(lambda: watcher.payloads(topic(DEVICE, "status"))[-1:] == [b"offline"])
    watcher.close()


def test_broker_puback_is_not_an_ack(tmp_path: Path, mosquitto: Broker, store: IngestStore) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(20)])
    worker, t = make(buf, mosquitto, ack_timeout_s=0.3)
    with pytest.raises(SyncUnavailable):  # broker took them (PUBACK), no cloud ack came
        worker.step()
    assert buf.stats().depth == 20 and worker.health.counter("ack_timeouts") == 1
    cloud = MqttIngest(store, mosquitto.host, mosquitto.port)
    assert cloud.wait_connected()
    stop, th = run(worker)
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    th.join(5)
    assert store.seqs(DEVICE) == list(range(1, 21))
    t.close()
    cloud.close()


def test_bad_acks_are_counted_and_ignored(tmp_path: Path, mosquitto: Broker) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
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
    tmp_path: Path, mosquitto: Broker, store: IngestStore
) -> None:
    cloud = MqttIngest(store, mosquitto.host, mosquitto.port)
    assert cloud.wait_connected()
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(2000)])
    worker, t = make(buf, mosquitto, batch_size=100, ack_timeout_s=1.0)
    stop, th = run(worker)
    wait_until(lambda: store.count() >= 300)
    mosquitto.stop()
    mid = store.count()
    for i in range(10):  # deciding goes on during the outage
        buf.append_many([event_fields(5000 + i)])
    mosquitto.start()
    wait_until(lambda: buf.stats().depth == 0, timeout=60)
    stop.set()
    th.join(5)
    assert mid < 2010
    assert store.seqs(DEVICE) == list(range(1, 2011))  # every event, once
    t.close()
    cloud.close()


def test_both_mode_falls_back_to_http_when_cloud_acks_stop(
    tmp_path: Path, mosquitto: Broker, store: IngestStore
) -> None:
    from edge.sync.http import HttpTransport
    from tests.edge.cloud_stand_in import IngestHttpServer

    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(50)])
    with IngestHttpServer(store) as server:  # no MQTT ingest: the broker PUBACKs, nobody acks
        ident = Identity(device_id=DEVICE, api_key="test-key")
        http = HttpTransport(server.base_url, ident)
        worker, t = make(buf, mosquitto, then=[http], mode="both", ack_timeout_s=0.3, batch_size=20)
        stop, th = run(worker)
        wait_until(lambda: buf.stats().depth == 0)
        stop.set()
        th.join(5)
    assert worker.health.counter("ack_timeouts") >= 1
    assert store.seqs(DEVICE) == list(range(1, 51))
    t.close()
