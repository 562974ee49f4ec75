"""One unit must never hurt the fleet: the generated broker config against a real Mosquitto 2.

The broker runs exactly the ``mosquitto.conf`` that ``write_broker_files`` writes (two
loopback listeners on free ports; ``user root`` added when the tests run as root).
Units connect to the unit listener, the cloud (real :class:`IngestWorker` on SQLite,
:class:`DesiredPublisher`) to the service listener as the service user.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from cloud import fleet_views
from cloud.broker_files import MAX_PACKET_BYTES, BrokerConf, write_broker_files
from cloud.checks import TimeBounds
from cloud.desired_publish import DesiredPublisher
from cloud.fleet_ingest import FleetStateWorker
from cloud.keys import revoke_key, split_token
from cloud.mqtt_ingest import IngestWorker
from cloud.store import Store, open_store
from cloud.store.tables import events
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from models.wire_fleet import DesiredState
from tests.cloud.support import event, register_unit
from tests.support.mosquitto import Broker, free_port, mosquitto_binary, run_mosquitto_conf
from tests.support.postgres import pg_schema
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mqtt

SERVICE, SERVICE_PW = "cloud-svc", "svc-secret"
BOUNDS = TimeBounds.of(300, 30)
WAIT = 15.0


@dataclass
class Fleet:
    """A hardened broker with its store and files."""

    broker: Broker
    store: Store
    db_url: str
    files: Path
    unit_port: int
    service_port: int
    tokens: dict[str, str]


class Client:
    """A raw paho v5 client that records what happens to it, for waiting on conditions."""

    def __init__(self, port: int, user: str, password: str, client_id: str) -> None:
        self.cond = threading.Condition()
        self.connack: Any = None
        self.disconnects: list[str] = []
        self.subacks: dict[int, list[Any]] = {}
        self.pubacks: dict[int, Any] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password)
        self.c.on_connect = lambda _c, _u, _f, rc, _p: self._note("connack", rc)
        self.c.on_disconnect = lambda _c, _u, _f, rc, _p: self._note("disconnect", rc)
        self.c.on_subscribe = lambda _c, _u, mid, codes, _p: self._note("suback", (mid, codes))
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self._note("puback", (mid, rc))
        self.c.on_message = lambda _c, _u, m: self._note(
            "message", (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.c.reconnect_delay_set(30, 60)  # a kicked client stays off while the test looks
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None)

    def _note(self, what: str, value: Any) -> None:
        with self.cond:
            if what == "connack":
                self.connack = value
            elif what == "disconnect":
                self.disconnects.append(str(value))
            elif what == "suback":
                self.subacks[value[0]] = value[1]
            elif what == "puback":
                self.pubacks[value[0]] = value[1]
            else:
                self.messages.append(value)
            self.cond.notify_all()

    def wait(self, cond: Any, timeout: float = WAIT) -> None:
        with self.cond:
            assert self.cond.wait_for(cond, timeout), "condition not reached in time"

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, name: str) -> Any:
        """Subscribe at QoS 1 and return the broker's reason code for it."""
        _, mid = self.c.subscribe(name, qos=1)
        self.wait(lambda: mid in self.subacks)
        return self.subacks[mid][0]

    def publish(self, name: str, payload: bytes | str, *, retain: bool = False) -> Any:
        """Publish at QoS 1; the PUBACK reason code, or None when the broker hung up instead."""
        with self.cond:  # counted before sending: the broker may hang up before publish returns
            n = len(self.disconnects)
        info = self.c.publish(name, payload, qos=1, retain=retain)
        self.wait(lambda: info.mid in self.pubacks or len(self.disconnects) > n)
        return self.pubacks.get(info.mid)

    def got(self, name: str) -> list[bytes]:
        with self.cond:
            return [p for t, p, _ in self.messages if t == name]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """The generated broker config on a real Mosquitto; the store on SQLite unless the
    test asks for ``postgresql`` (``indirect`` parametrization)."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed")
    with ExitStack() as stack:
        if getattr(request, "param", "sqlite") == "postgresql":
            db_url = stack.enter_context(pg_schema())
        else:
            db_url = f"sqlite:///{tmp_path / 'c.db'}"
        yield from _fleet(tmp_path, db_url)


def _fleet(tmp_path: Path, db_url: str) -> Iterator[Fleet]:
    store = open_store(db_url, pool_size=4)
    tokens = {d: register_unit(store, d) for d in ("unit-a", "unit-b")}
    files, persist = tmp_path / "broker", tmp_path / "persist"
    persist.mkdir()
    unit_port, service_port = free_port(), free_port()
    conf = BrokerConf(
        files_dir=files,
        unit_host="127.0.0.1",
        unit_port=unit_port,
        service_port=service_port,
        persistence_dir=persist,
    )
    conf_file = tmp_path / "mosquitto.conf"
    with store.engine.connect() as conn:
        write_broker_files(
            conn,
            files,
            service_user=SERVICE,
            service_password=SERVICE_PW,
            conf=conf,
            conf_file=conf_file,
        )
    if os.geteuid() == 0:  # as root Mosquitto would drop to user mosquitto, who cannot read tmp
        conf_file.write_text("user root\n" + conf_file.read_text())
    with run_mosquitto_conf(conf_file, unit_port, service_port, log=tmp_path / "log") as broker:
        yield Fleet(broker, store, db_url, files, unit_port, service_port, tokens)
    store.dispose()


def unit(fleet: Fleet, device_id: str, client_id: str | None = None) -> Client:
    return Client(
        fleet.unit_port, device_id, fleet.tokens[device_id], client_id or f"x-{device_id}"
    )


def unit_accepted(fleet: Fleet, device_id: str) -> bool:
    c = unit(fleet, device_id)
    c.close()
    return c.accepted


def service(fleet: Fleet, client_id: str) -> Client:
    return Client(fleet.service_port, SERVICE, SERVICE_PW, client_id)


def workers(fleet: Fleet, n: int) -> list[IngestWorker]:
    out = [
        IngestWorker(
            open_store(fleet.db_url, pool_size=2),
            host="127.0.0.1",
            port=fleet.service_port,
            bounds=BOUNDS,
            username=SERVICE,
            password=SERVICE_PW,
            batch_wait_s=0.02,
        )
        for _ in range(n)
    ]
    for w in out:
        w.start()
    for w in out:
        assert w.ready.wait(WAIT), "an ingest worker did not get its shared subscription"
    return out


def stop(ws: list[IngestWorker]) -> None:
    for w in ws:
        w.stop()
        w.store.dispose()


def transport(fleet: Fleet, device_id: str, acks: list[bytes]) -> MqttTransport:
    t = MqttTransport(
        "127.0.0.1",
        fleet.unit_port,
        Identity(device_id=device_id, api_key=fleet.tokens[device_id]),
        keepalive_s=5,
        reconnect_max_s=1,
        on_ack=acks.append,
    )
    assert t.wait_connected(WAIT), "the edge transport did not connect and subscribe"
    return t


def stored(fleet: Fleet, device_id: str) -> int:
    with fleet.store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(events).where(events.c.device_id == device_id)
            ).scalar_one()
        )


def highest(acks: list[bytes]) -> int:
    return max((json.loads(a)["highest_contiguous"] for a in list(acks)), default=0)


def test_config_is_complete(fleet: Fleet) -> None:
    text = fleet.broker.conf.read_text()
    for line in (
        "per_listener_settings true",
        "max_queued_messages 0",
        "persistence true",
        "use_username_as_clientid true",
        "allow_anonymous false",
        f"password_file {fleet.files.resolve() / 'units.passwd'}",
        f"acl_file {fleet.files.resolve() / 'service.acl'}",
    ):
        assert line in text.splitlines(), line
    assert SERVICE not in (fleet.files / "units.passwd").read_text()
    assert "unit-a" not in (fleet.files / "service.passwd").read_text()


@pytest.mark.parametrize("fleet", ["sqlite", "postgresql"], indirect=True)
def test_a_unit_cannot_join_the_ingest_share_and_every_event_is_stored(fleet: Fleet) -> None:
    attacker = unit(fleet, "unit-a")
    for name in (
        "$share/ingest/shelfsense/+/events",
        "$share/ingest/shelfsense/#",
        "$share/ingest/shelfsense/unit-b/events",
        "$share/other/shelfsense/+/events",
    ):
        assert attacker.subscribe(name).is_failure, name
    ws = workers(fleet, 2)  # several workers, all the service user, each its own client id
    acks: list[bytes] = []
    b = transport(fleet, "unit-b", acks)
    try:
        for seq in range(1, 21):
            assert b.publish("events", json.dumps(event("unit-b", seq)), qos=1)
        wait_until(lambda: highest(acks) == 20)
        assert stored(fleet, "unit-b") == 20
        assert sum(w.stored for w in ws) == 20
        assert all(w.client.is_connected() for w in ws)
        assert attacker.messages == [] and attacker.disconnects == []
    finally:
        b.close()
        attacker.close()
        stop(ws)


def test_a_unit_may_subscribe_only_to_its_own_ack_and_desired(fleet: Fleet) -> None:
    a = unit(fleet, "unit-a")
    try:
        for name in (
            "shelfsense/unit-b/ack",
            "shelfsense/unit-b/#",
            "shelfsense/+/ack",
            "shelfsense/#",
            "#",
            "shelfsense/unit-a/#",
            "shelfsense/unit-a/events",
            "$SYS/#",
        ):
            assert a.subscribe(name).is_failure, name
        for name in ("shelfsense/unit-a/ack", "shelfsense/unit-a/desired"):
            assert not a.subscribe(name).is_failure, name
    finally:
        a.close()


def test_client_id_takeover_does_not_knock_another_unit_off(fleet: Fleet) -> None:
    watcher = service(fleet, "watcher")
    assert not watcher.subscribe("shelfsense/unit-b/events").is_failure
    b = unit(fleet, "unit-b", client_id="shelfsense-unit-b")  # the old id: the broker renames
    try:
        for stolen in ("unit-b", "shelfsense-unit-b"):
            a = unit(fleet, "unit-a", client_id=stolen)
            assert a.accepted  # logged in, but as client id "unit-a"
            rc = b.publish("shelfsense/unit-b/events", stolen)
            assert rc is not None and not rc.is_failure
            watcher.wait(lambda s=stolen: s.encode() in watcher.got("shelfsense/unit-b/events"))
            assert b.disconnects == []  # B's connection survived, the PUBACK came on it
            a.close()
    finally:
        b.close()
        watcher.close()


def test_a_unit_cannot_publish_desired_or_ack(fleet: Fleet) -> None:
    reader = service(fleet, "reader")  # sees whatever reaches unit-a's ack and desired
    for leaf in ("ack", "desired"):
        assert not reader.subscribe(f"shelfsense/unit-a/{leaf}").is_failure
    a = unit(fleet, "unit-a")
    assert not a.subscribe("shelfsense/unit-a/ack").is_failure
    # Refused. With max_queued_messages 0, Mosquitto 2.0.11 also closes the connection of a
    # client whose publish is refused (any QoS), so each forgery costs a connection.
    a.c.publish("shelfsense/unit-a/ack", b'{"forged": 0}', qos=0)
    a.wait(lambda: len(a.disconnects) == 1)
    a2 = unit(fleet, "unit-a")
    rc = a2.publish("shelfsense/unit-a/desired", b'{"forged": 1}', retain=True)
    assert rc is None or rc.is_failure
    a3 = unit(fleet, "unit-a")
    rc = a3.publish("shelfsense/unit-a/ack", b'{"forged": 2}')
    assert rc is None or rc.is_failure
    # the unit, back again: a retained forgery would arrive right after its SUBACK
    a4 = unit(fleet, "unit-a")
    for leaf in ("ack", "desired"):
        assert not a4.subscribe(f"shelfsense/unit-a/{leaf}").is_failure
    cloud = service(fleet, "cloud")
    for leaf in ("ack", "desired"):
        rc = cloud.publish(f"shelfsense/unit-a/{leaf}", b'{"genuine": 1}')
        assert rc is not None and not rc.is_failure
    for c in (a4, reader):
        c.wait(lambda c=c: len(c.messages) == 2)
        assert sorted(c.messages) == [
            ("shelfsense/unit-a/ack", b'{"genuine": 1}', False),
            ("shelfsense/unit-a/desired", b'{"genuine": 1}', False),
        ]
    for c in (a, a2, a3, a4, cloud, reader):
        c.close()


def test_the_cloud_publishes_desired_to_the_unit_and_ingests_beside_it(fleet: Fleet) -> None:
    ws = workers(fleet, 3)
    pub = DesiredPublisher(
        host="127.0.0.1", port=fleet.service_port, username=SERVICE, password=SERVICE_PW
    )
    pub.start()
    assert pub.connected.wait(WAIT)
    desired: list[bytes] = []
    acks: list[bytes] = []
    a = MqttTransport(
        "127.0.0.1",
        fleet.unit_port,
        Identity(device_id="unit-a", api_key=fleet.tokens["unit-a"]),
        keepalive_s=5,
        on_ack=acks.append,
        on_desired=desired.append,
    )
    try:
        assert a.wait_connected(WAIT)
        assert a.client._client_id == b"unit-a"  # the edge asks for its login as client id
        assert pub.publish(DesiredState(device_id="unit-a"))
        wait_until(lambda: len(desired) == 1)
        assert json.loads(desired[0])["device_id"] == "unit-a"
        for seq in range(1, 6):
            assert a.publish("events", json.dumps(event("unit-a", seq)), qos=1)
        wait_until(lambda: highest(acks) == 5)
        assert stored(fleet, "unit-a") == 5
        assert all(w.client.is_connected() for w in ws) and pub.connected.is_set()
    finally:
        a.close()
        pub.stop()
        stop(ws)


def test_unit_keeps_status_retained_with_its_last_will(fleet: Fleet) -> None:
    watcher = service(fleet, "status-watcher")
    assert not watcher.subscribe("shelfsense/unit-b/status").is_failure
    b = transport(fleet, "unit-b", [])
    watcher.wait(lambda: watcher.got("shelfsense/unit-b/status")[-1:] == [b"online"])
    b.client.loop_stop()
    sock = b.client.socket()
    assert sock is not None
    sock.close()  # vanish without DISCONNECT: the broker publishes the will
    watcher.wait(lambda: watcher.got("shelfsense/unit-b/status")[-1:] == [b"offline"])
    late = service(fleet, "late")
    assert not late.subscribe("shelfsense/unit-b/status").is_failure
    late.wait(lambda: late.got("shelfsense/unit-b/status") == [b"offline"])  # retained
    watcher.close()
    late.close()


def test_a_unit_writes_only_its_own_state_through_the_broker(fleet: Fleet) -> None:
    """The fleet state worker reads units' state as the service user; a forgery never arrives."""
    worker = FleetStateWorker(
        fleet.store,
        host="127.0.0.1",
        port=fleet.service_port,
        username=SERVICE,
        password=SERVICE_PW,
    )
    worker.start()
    try:
        assert worker.ready.wait(WAIT), "the fleet state worker did not get its subscriptions"
        forged = json.dumps({"at": 1e9, "alarms": {"forged": {"since": 1e9}}})
        for name, payload in (
            ("shelfsense/unit-b/health", forged),
            ("shelfsense/unit-b/status", "online"),
        ):
            forger = unit(fleet, "unit-a")  # each refused publish costs the forger its link
            rc = forger.publish(name, payload, retain=name.endswith("status"))
            assert rc is None or rc.is_failure
            forger.close()
        a = transport(fleet, "unit-a", [])
        wait_until(lambda: _state(fleet, "unit-a")["state"] == "online")
        own = {"at": 1.8e9, "alarms": {"disk_full": {"since": 1.8e9}}, "buffer_depth": 3}
        assert a.publish("health", json.dumps(own), qos=1)
        wait_until(lambda: _state(fleet, "unit-a")["alarms"] == ["disk_full"])
        a.close()
        b = _state(fleet, "unit-b")
        assert (b["state"], b["alarms"], b["health_at"]) == ("unknown", [], None)
        assert worker.refused == 0  # refused by the broker: nothing reached the cloud
    finally:
        worker.stop()


def _state(fleet: Fleet, device_id: str) -> dict[str, Any]:
    with fleet.store.engine.connect() as conn:
        return fleet_views.device_state(conn, device_id).model_dump()


def test_revoked_key_drops_the_unit_on_sighup(fleet: Fleet, capsys: Any) -> None:
    from shelfsense.cli import main

    a, b = unit(fleet, "unit-a"), unit(fleet, "unit-b")
    key_id = split_token(fleet.tokens["unit-a"])
    code = main(
        [
            "fleet",
            "keys",
            "revoke",
            key_id,
            "--database-url",
            fleet.db_url,
            "--broker-dir",
            str(fleet.files),
            "--broker-pid",
            str(fleet.broker.proc.pid),
        ]
    )
    assert code == 0 and "SIGHUP" in capsys.readouterr().out
    a.wait(lambda: len(a.disconnects) > 0)  # Mosquitto rechecks logins on reload
    again = unit(fleet, "unit-a")
    assert not again.accepted
    rc = b.publish("shelfsense/unit-b/events", b"x")
    assert rc is not None and not rc.is_failure and b.disconnects == []
    for c in (a, b, again):
        c.close()


def test_a_unit_added_later_can_do_nothing_until_the_broker_restarts(fleet: Fleet) -> None:
    fleet.tokens["unit-c"] = register_unit(fleet.store, "unit-c")
    with fleet.store.engine.connect() as conn:
        write_broker_files(conn, fleet.files, service_user=SERVICE, service_password=SERVICE_PW)
    fleet.broker.proc.send_signal(
        signal.SIGHUP
    )  # SIGHUP: the password files reload, the plugin does not
    c = None
    try:
        wait_until(lambda: unit_accepted(fleet, "unit-c"))
        c = unit(fleet, "unit-c")
        assert c.subscribe("shelfsense/unit-c/ack").is_failure
        c.close()
        fleet.broker.stop()
        fleet.broker.start()
        c = unit(fleet, "unit-c")
        assert not c.subscribe("shelfsense/unit-c/ack").is_failure
    finally:
        if c is not None:
            c.close()


def test_revoking_in_the_store_alone_changes_nothing_until_files_are_rewritten(
    fleet: Fleet,
) -> None:
    with fleet.store.writer.begin() as conn:
        revoke_key(conn, split_token(fleet.tokens["unit-b"]))
    b = unit(fleet, "unit-b")  # the broker does not read the store
    assert b.accepted
    b.close()


def test_logins_only_with_the_live_key_and_only_on_the_unit_listener(fleet: Fleet) -> None:
    assert unit_accepted(fleet, "unit-a")
    for port, user, password in (
        (fleet.unit_port, "unit-a", "wrong"),
        (fleet.unit_port, "unit-a", fleet.tokens["unit-b"]),
        (fleet.unit_port, SERVICE, SERVICE_PW),  # the service user has no unit login
        (fleet.service_port, "unit-a", fleet.tokens["unit-a"]),  # nor a unit a service one
    ):
        c = Client(port, user, password, f"probe-{user}")
        c.close()
        assert not c.accepted, (port, user)
    watcher = service(fleet, "watcher")
    assert not watcher.subscribe("shelfsense/+/events").is_failure
    a = unit(fleet, "unit-a")
    rc = a.publish("shelfsense/unit-b/events", b"posing")  # refused; nothing reaches the cloud
    assert rc is None or rc.is_failure
    b = unit(fleet, "unit-b")
    assert not b.publish("shelfsense/unit-b/events", b"real").is_failure
    watcher.wait(lambda: watcher.got("shelfsense/unit-b/events") == [b"real"])
    for c in (watcher, a, b):
        c.close()


def test_an_oversized_packet_drops_its_sender_only(fleet: Fleet) -> None:
    """A message past ``max_packet_size`` never reaches a subscriber; only its sender is cut."""
    watcher = service(fleet, "watcher-size")
    assert not watcher.subscribe("shelfsense/+/events").is_failure
    a, b = unit(fleet, "unit-a"), unit(fleet, "unit-b")
    try:
        a.publish("shelfsense/unit-a/events", b"x" * (MAX_PACKET_BYTES + 1))
        a.wait(lambda: bool(a.disconnects))
        assert b.publish("shelfsense/unit-b/events", "still here") is not None
        watcher.wait(lambda: b"still here" in watcher.got("shelfsense/unit-b/events"))
        assert watcher.got("shelfsense/unit-a/events") == []
        assert b.disconnects == []
    finally:
        a.close()
        b.close()
        watcher.close()
