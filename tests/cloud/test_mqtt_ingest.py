"""MQTT ingest against a real Mosquitto: two workers on the shared subscription, acks, duplicates."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from cloud.checks import TimeBounds
from cloud.mqtt_ingest import IngestWorker, parse_message
from cloud.store import open_store
from cloud.store.tables import events
from tests.cloud.support import batch, event, register_unit, serve
from tests.support.waiting import wait_until

BOUNDS = TimeBounds(timedelta(minutes=5), timedelta(days=30))


class Unit:
    """A unit-side MQTT client: publishes events, collects the cloud's acks."""

    def __init__(self, host: str, port: int, device_id: str) -> None:
        self.device_id = device_id
        self.acks: list[dict] = []
        self.got_ack = threading.Condition()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=device_id,
            protocol=mqtt.MQTTv5,
        )
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *_: subscribed.set()
        self.c.connect(host, port)
        self.c.loop_start()
        self.c.subscribe(f"shelfsense/{device_id}/ack", qos=1)
        assert subscribed.wait(10), "no SUBACK for the ack topic"

    def _on_message(self, _c, _u, msg) -> None:
        with self.got_ack:
            self.acks.append(json.loads(msg.payload))
            self.got_ack.notify_all()

    def publish(self, ev: dict) -> None:
        self.c.publish(
            f"shelfsense/{ev['device_id']}/events", json.dumps(ev), qos=1
        ).wait_for_publish(5)

    def wait_highest(self, n: int, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        with self.got_ack:
            while max((a["highest_contiguous"] for a in self.acks), default=0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.got_ack.wait(left)
            return max((a["highest_contiguous"] for a in self.acks), default=0)

    def wait_acked(self, seqs: set[int], timeout: float = 20) -> set[int]:
        """Every seq named in an ack so far, once ``seqs`` are all in (or at the timeout)."""
        deadline = time.monotonic() + timeout
        with self.got_ack:
            while not seqs <= (acked := {s for a in self.acks for s in a["stored"]}):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.got_ack.wait(left)
            return acked

    def wait_refused(self, timeout: float = 10) -> list[dict]:
        """The refusals named in acks so far, once there is one (or at the timeout)."""
        deadline = time.monotonic() + timeout
        with self.got_ack:
            while not (got := [r for a in self.acks for r in a.get("refused", [])]):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.got_ack.wait(left)
            return got

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_parse_message_refuses_bad_messages() -> None:
    now = datetime.now(UTC)
    good = json.dumps(event("u1", 1)).encode()
    assert parse_message("shelfsense/u1/events", good, now=now, bounds=BOUNDS).seq == 1
    for topic, payload in [
        ("shelfsense/u2/events", good),  # topic of another unit
        ("shelfsense/u1/health", good),
        ("shelfsense/u1/events", b"{not json"),
        ("shelfsense/u1/events", json.dumps({**event("u1", 1), "x": 1}).encode()),
        ("shelfsense/u1/events", json.dumps(event("u1", 1, t=now + timedelta(hours=1))).encode()),
    ]:
        with pytest.raises(ValueError):
            parse_message(topic, payload, now=now, bounds=BOUNDS)


def test_two_workers_split_traffic_store_once_and_ack(mosquitto, sqlite_settings) -> None:
    n_units, per_unit = 3, 40
    with serve(sqlite_settings) as live:
        tokens = {f"unit-{i}": register_unit(live.store, f"unit-{i}") for i in range(n_units)}
        workers = [
            IngestWorker(
                open_store(sqlite_settings.database_url, pool_size=2),
                host=mosquitto.host,
                port=mosquitto.port,
                bounds=BOUNDS,
                batch_wait_s=0.02,
            )
            for _ in range(2)
        ]
        for w in workers:
            w.start()
        for w in workers:
            assert w.ready.wait(10)
        units = [Unit(mosquitto.host, mosquitto.port, d) for d in tokens]
        try:
            # unit-0's first 10 events also go over HTTP first: the same events by both paths
            r = live.client(tokens["unit-0"]).post(
                "/v1/ingest/events", json=batch("unit-0", range(1, 11))
            )
            assert r.status_code == 200
            for seq in range(1, per_unit + 1):
                for u in units:
                    u.publish(event(u.device_id, seq))
            # and a duplicate burst: every unit re-sends its first 5 (as after a lost ack)
            for u in units:
                for seq in range(1, 6):
                    u.publish(event(u.device_id, seq))
            bad = event("unit-1", 999)
            units[0].c.publish("shelfsense/unit-0/events", json.dumps(bad), qos=1).wait_for_publish(
                5
            )
            for u in units:
                assert u.wait_highest(per_unit) == per_unit
                # acks of two workers may arrive out of order: all seqs get acked in the end
                assert u.wait_acked(set(range(1, per_unit + 1))) == set(range(1, per_unit + 1))
            wait_until(lambda: sum(w.refused for w in workers) >= 1, timeout=10)
            refusals = units[0].wait_refused()
        finally:
            for u in units:
                u.close()
            for w in workers:
                w.stop()
                w.store.dispose()
        with live.store.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.device_id, func.count(), func.count(func.distinct(events.c.seq)))
                .group_by(events.c.device_id)
                .order_by(events.c.device_id)
            ).all()
        assert [tuple(r) for r in rows] == [(d, per_unit, per_unit) for d in sorted(tokens)]
        assert all(w.stored > 0 for w in workers), [w.stored for w in workers]  # both took a share
        assert sum(w.stored for w in workers) == n_units * per_unit - 10
        assert sum(w.refused for w in workers) == 1
        for u in units:
            assert all(a["device_id"] == u.device_id for a in u.acks)
        # the publisher of the refused message hears which one and why; nobody else does
        assert [r["seq"] for r in refusals] == [999] and "unit-1" in refusals[0]["reason"]
        assert not any(a.get("refused") for u in units[1:] for a in u.acks)


def test_serve_with_mqtt_runs_an_ingest_worker(mosquitto, tmp_path) -> None:
    from cloud.settings import build_settings

    s = build_settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        rate_per_s=0,
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
    )
    with serve(s, mqtt=True) as live:
        register_unit(live.store, "unit-5")
        unit = Unit(mosquitto.host, mosquitto.port, "unit-5")
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the worker subscribes once the app is up
                unit.publish(event("unit-5", 1))
                if unit.wait_highest(1, timeout=0.5) == 1:
                    break
            assert unit.wait_highest(1, timeout=5) == 1
        finally:
            unit.close()
        with live.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1
