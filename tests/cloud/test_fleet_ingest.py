"""Fleet state over a real Mosquitto into the real app: status, health, reported, last will, refusals."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.keys import Role
from cloud.settings import build_settings
from edge.health import Health, health_report
from edge.sync.endpoints import TOPIC_HEALTH, TOPIC_REPORTED
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from models.wire import MAX_HEALTH_BYTES
from shelfsense.cli import main
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.support.waiting import wait_until


def _settings(tmp_path, broker):
    return build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        rate_per_s=0,
        db_pool_size=5,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
    )


def _devices(live: Live) -> dict[str, dict]:
    op = live.client(make_key(live.store, Role.OPERATOR))
    return {d["device_id"]: d for d in op.get("/v1/devices").json()["data"]}


def _fleet_worker(live: Live):
    return live.server.config.app.state.fleet_worker


def _unit(broker, device_id: str) -> MqttTransport:
    t = MqttTransport(broker.host, broker.port, Identity(device_id=device_id), keepalive_s=5)
    wait_until(t.available, timeout=10)
    return t


def _crash(t: MqttTransport) -> None:
    """The unit dies: its network loop stops and its socket closes without a DISCONNECT."""
    t.client.loop_stop()
    sock = t.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_a_unit_shows_online_with_its_health_then_offline_by_its_last_will(
    mosquitto, tmp_path, capsys
) -> None:
    settings = _settings(tmp_path, mosquitto)
    with serve(settings, mqtt=True) as live:
        register_unit(live.store, "unit-1")
        wait_until(lambda: _fleet_worker(live).down_reason() is None, timeout=10)
        unit = _unit(mosquitto, "unit-1")
        wait_until(lambda: _devices(live)["unit-1"]["state"] == "online", timeout=10)

        health = Health()
        health.set("model_version", 7)
        health.set("decided_by", "model")
        health.set("buffer_depth", 12)
        health.set("oldest_unsynced", time.time() - 95)
        health.set("last_sync", time.time() - 3)
        health.component("camera", False, "no frames for 30 s")
        health.component("loadcell_link", True, "up")
        health.alarm("camera_down", "no frames for 30 s")
        unit.publish(TOPIC_HEALTH, json.dumps(health_report(health.snapshot())))
        wait_until(lambda: _devices(live)["unit-1"]["alarms"] == ["camera_down"], timeout=10)
        one = _devices(live)["unit-1"]
        assert (one["model_version"], one["decided_by"], one["buffer_depth"]) == (7, "model", 12)
        assert 90 <= one["oldest_unsynced_age_s"] <= 120
        assert one["components"]["camera"] == {"ok": False, "detail": "no frames for 30 s"}
        assert one["agent_version"]  # the installed package's version

        unit.publish(TOPIC_REPORTED, json.dumps({"state": "active", "version": 7}), qos=1)
        wait_until(lambda: _devices(live)["unit-1"]["ota_state"] == "active", timeout=10)

        health.clear("camera_down")
        health.component("camera", True, "up")
        unit.publish(TOPIC_HEALTH, json.dumps(health_report(health.snapshot())))
        wait_until(lambda: _devices(live)["unit-1"]["alarms"] == [], timeout=10)
        op = live.client(make_key(live.store, Role.OPERATOR))
        history = op.get("/v1/alarms", params={"device": "unit-1"}).json()["data"]
        assert [(a["name"], a["active"]) for a in history] == [("camera_down", False)]

        assert main(["fleet", "devices", "list", "--database-url", settings.database_url]) == 0
        table = capsys.readouterr().out.splitlines()
        row = next(line.split() for line in table if line.startswith("unit-1"))
        assert row[:3] == ["unit-1", "store-1/bay-1", "online"] and "v7" in row and "12" in row

        _crash(unit)
        wait_until(lambda: _devices(live)["unit-1"]["state"] == "offline", timeout=20)
        changed = datetime.fromisoformat(_devices(live)["unit-1"]["status_changed_at"])
        assert (datetime.now(UTC) - changed).total_seconds() < 30


def test_a_restarted_cloud_learns_who_is_online_from_the_retained_status(
    mosquitto, tmp_path
) -> None:
    settings = _settings(tmp_path, mosquitto)
    with serve(settings) as live:  # no MQTT: the cloud hears nothing yet
        register_unit(live.store, "unit-1")
        register_unit(live.store, "unit-2")
    unit = _unit(mosquitto, "unit-1")
    gone = _unit(mosquitto, "unit-2")
    gone.close()  # a clean stop says offline (retained) too
    with serve(settings, mqtt=True) as live:
        wait_until(
            lambda: (
                {d: s["state"] for d, s in _devices(live).items()}
                == {"unit-1": "online", "unit-2": "offline"}
            ),
            timeout=10,
        )
        one = _devices(live)["unit-1"]  # the broker's copy: not heard by this cloud yet
        assert one["last_seen_at"] is None and one["status_changed_at"] is None
    unit.close()


def _raw(broker, client_id: str) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def test_bad_messages_are_refused_alone_and_ingest_goes_on(mosquitto, tmp_path) -> None:
    settings = _settings(tmp_path, mosquitto)
    with serve(settings, mqtt=True) as live:
        register_unit(live.store, "unit-1")
        register_unit(live.store, "unit-2")
        worker = _fleet_worker(live)
        wait_until(lambda: worker.down_reason() is None, timeout=10)
        bad = _raw(mosquitto, "unit-1")
        now = time.time()
        for topic, payload in [
            ("shelfsense/unit-1/health", b"{not json"),
            ("shelfsense/unit-1/health", b" " * (MAX_HEALTH_BYTES + 1)),
            ("shelfsense/unit-1/health", json.dumps({"at": now, "pid": 1}).encode()),
            ("shelfsense/unit-1/status", b"sleepy"),
            ("shelfsense/unit-1/reported", b'{"state": "active", "version": -3}'),
            ("shelfsense/ghost/health", json.dumps({"at": now}).encode()),  # no such unit
        ]:
            bad.publish(topic, payload, qos=1).wait_for_publish(5)
        good = _raw(mosquitto, "unit-2")
        body = {"at": now, "alarms": {"disk_full": {"since": now, "detail": "98 %"}}}
        good.publish("shelfsense/unit-2/health", json.dumps(body), qos=1).wait_for_publish(5)
        wait_until(lambda: _devices(live)["unit-2"]["alarms"] == ["disk_full"], timeout=10)
        wait_until(lambda: worker.refused == 6, timeout=10)
        assert worker.down_reason() is None  # still reading
        one = _devices(live)["unit-1"]
        assert one["alarms"] == [] and one["health_at"] is None and one["ota_state"] is None
        assert "ghost" in worker.last_refusal and "not_found" in worker.last_refusal
        for c in (bad, good):
            c.disconnect()
            c.loop_stop()
