"""Generated Mosquitto password and ACL files, loaded by a real broker: each unit only on its topics."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.broker_files import write_broker_files
from cloud.keys import Role, create_key, revoke_key
from cloud.store import open_store
from tests.cloud.support import register_unit
from tests.support.mosquitto import mosquitto_binary, run_mosquitto


def connect(port: int, user: str, password: str) -> tuple[mqtt.Client, int]:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"{user}-{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5,
    )
    c.username_pw_set(user, password)
    done = threading.Event()
    result = {}

    def on_connect(_c, _u, _f, rc, _p):
        result["rc"] = rc.value
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(5)
    if result.get("rc", -1) != 0:
        c.disconnect()
        c.loop_stop()
    return c, result.get("rc", -1)


def test_units_are_confined_to_their_own_topics(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed")
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", pool_size=2)
    tok1 = register_unit(store, "unit-1")
    tok2 = register_unit(store, "unit-2")
    tok3 = register_unit(store, "unit-3")
    with store.writer.begin() as conn:
        revoke_key(conn, tok3.split("_")[1])
        newer = create_key(conn, role=Role.UNIT, device_id="unit-1").token  # newest key wins
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    with store.engine.connect() as conn:
        units = write_broker_files(
            conn, password_file=pw, acl_file=acl, service_user="cloud", service_password="svc-pw"
        )
    assert units == ["unit-1", "unit-2"]
    assert "topic readwrite shelfsense/unit-1/#" in acl.read_text()
    extra = f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
    if os.geteuid() == 0:  # run as root, mosquitto drops to user mosquitto, who cannot read tmp
        extra += "user root\n"
    conf_dir = tmp_path / "broker"
    conf_dir.mkdir()
    with run_mosquitto(conf_dir, extra_conf=extra) as broker:
        text = (conf_dir / f"mosquitto-{broker.port}.conf").read_text()
        assert "allow_anonymous false" in text
        assert connect(broker.port, "unit-1", tok1)[1] != 0  # older key of unit-1: replaced
        assert connect(broker.port, "unit-2", "wrong")[1] != 0
        assert connect(broker.port, "unit-3", tok3)[1] != 0  # revoked
        svc, rc = connect(broker.port, "cloud", "svc-pw")
        assert rc == 0
        got: list[str] = []
        svc.on_message = lambda _c, _u, m: got.append(m.topic)
        svc.subscribe("$share/ingest/shelfsense/+/events", qos=1)
        u1, rc1 = connect(broker.port, "unit-1", newer)
        u2, rc2 = connect(broker.port, "unit-2", tok2)
        assert rc1 == rc2 == 0
        spy: list[str] = []
        u1.on_message = lambda _c, _u, m: spy.append(m.topic)
        u1.subscribe("shelfsense/unit-2/#", qos=1)  # not its topics: nothing may arrive
        u1.subscribe("shelfsense/unit-1/ack", qos=1)
        time.sleep(0.3)
        u1.publish("shelfsense/unit-1/events", b"{}", qos=1).wait_for_publish(5)
        u2.publish("shelfsense/unit-2/events", b"{}", qos=1).wait_for_publish(5)
        svc.publish("shelfsense/unit-1/ack", b"{}", qos=1).wait_for_publish(5)
        svc.publish("shelfsense/unit-2/ack", b"{}", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while (len(got) < 2 or not spy) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert sorted(got) == ["shelfsense/unit-1/events", "shelfsense/unit-2/events"]
        assert spy == ["shelfsense/unit-1/ack"]  # not unit-2's ack, though subscribed to it
        # posing as another unit: the broker refuses the publish, nothing reaches the cloud
        u1.publish("shelfsense/unit-2/events", b"{}", qos=1).wait_for_publish(5)
        time.sleep(0.3)
        assert len(got) == 2
        for c in (svc, u1, u2):
            c.disconnect()
            c.loop_stop()
    store.dispose()
