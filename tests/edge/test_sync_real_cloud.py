"""Edge sync against the real cloud service: outage, restarts, refusals, quarantine.

The cloud is ``shelfsense cloud serve`` on a loopback port with a fresh SQLite file
and, for MQTT, two real ingest workers on the shared subscription of a real
Mosquitto (see :mod:`tests.edge.real_cloud`). What reached the cloud is read from its
store: every event once, per-device order intact (seq ``n`` carries the ``n``-th
decision), ``highest_contiguous`` at the end.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.buffer import Buffer
from edge.buffer.policy import Batch
from edge.buffer.store import EVENTS_REJECTED
from edge.config import parse_config
from edge.desired import DesiredStateHandler
from edge.health import Health
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.mqtt import MqttTransport
from edge.sync.transport import SyncUnavailable
from edge.sync.worker import MQTT_MAX_UNACKED, SyncWorker
from tests.edge.conftest import Buffers
from tests.edge.real_cloud import RealCloud, real_cloud, real_event
from tests.edge.sync_support import mqtt_sync
from tests.support.mosquitto import Broker
from tests.support.waiting import wait_until

DEVICE = "unit-r1"


def http_worker(
    buf: Buffer, cloud: RealCloud, key: str, *, rng: random.Random | None = None, **cfg: object
) -> SyncWorker:
    settings: dict[str, object] = {"mode": "http", "base_url": cloud.url, "batch_size": 100}
    settings |= {"idle_s": 0.02, "backoff_initial_s": 0.02, "backoff_max_s": 0.3}
    config = SyncConfig(**(settings | cfg))  # type: ignore[arg-type]
    ident = Identity(device_id=buf.device_id, api_key=key)
    return SyncWorker(buf, [HttpTransport(cloud.url, ident, timeout_s=5)], config=config, rng=rng)


@pytest.fixture
def running() -> Iterator[Callable[[SyncWorker], Callable[[], None]]]:
    """Run workers in threads; each call returns a stop for its worker; all stopped at the end."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def run(worker: SyncWorker) -> Callable[[], None]:
        stop = threading.Event()
        t = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        t.start()
        stops.append((stop, t))

        def halt() -> None:
            stop.set()
            t.join(10)
            assert not t.is_alive()

        return halt

    yield run
    for stop, t in stops:
        stop.set()
        t.join(10)


def assert_delivered(cloud: RealCloud, device: str, n: int) -> None:
    """Every seq 1..n stored once, each with its own decision, and the cloud says so."""
    rows = cloud.rows(device)
    assert sorted(r["seq"] for r in rows) == list(range(1, n + 1))
    by_seq = {r["seq"]: r["mono_time"] for r in rows}
    assert all(by_seq[s] == float(s - 1) for s in by_seq)  # seq s is the s-th decision
    assert cloud.highest_contiguous(device) == n


# -- HTTP -----------------------------------------------------------------------------


def test_outage_then_cloud_up_every_event_once_in_order(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path, start=False) as cloud:  # the cloud is down
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        worker = http_worker(buf, cloud, key, batch_size=50)
        running(worker)
        for i in range(0, 400, 4):
            buf.append_many([real_event(i + k) for k in range(4)])
        wait_until(lambda: buf.health.counter("sync_failures") >= 2)
        assert buf.stats().depth == 400 and cloud.count(DEVICE) == 0
        cloud.start()
        wait_until(lambda: buf.stats().depth == 0)
        assert_delivered(cloud, DEVICE, 400)
        assert [r["seq"] for r in cloud.rows(DEVICE)] == list(range(1, 401))  # arrival order
        assert buf.stats().rejected == 0 and not buf.health.alarmed(EVENTS_REJECTED)


def test_a_probe_ends_a_long_backoff_as_soon_as_the_cloud_is_back(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path, start=False) as cloud:  # the cloud is down
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(50)])
        # every retry wait is long (a uniform draw below 10 min; this seed draws 80 s)
        worker = http_worker(
            buf,
            cloud,
            key,
            rng=random.Random(1),
            backoff_initial_s=600,
            backoff_max_s=600,
            probe_s=0.2,
        )
        running(worker)
        wait_until(lambda: buf.health.counter("sync_failures") >= 1)
        cloud.start()
        wait_until(lambda: buf.stats().depth == 0)
        assert buf.health.counter("probes_answered") == 1
        assert buf.health.counter("sync_failures") == 1
        assert_delivered(cloud, DEVICE, 50)


def test_the_clouds_retry_after_is_read_from_a_429(tmp_path: Path, buffers: Buffers) -> None:
    with real_cloud(tmp_path, start=False) as cloud:
        cloud.env = {"SHELFSENSE_CLOUD_RATE_PER_S": "0.2", "SHELFSENSE_CLOUD_RATE_BURST": "1"}
        cloud.start()
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(4)])
        http = HttpTransport(cloud.url, Identity(device_id=DEVICE, api_key=key), timeout_s=5)
        batch = Batch(rows=buf.pending(2), historical=False)
        assert http.send(batch) == [1, 2]
        with pytest.raises(SyncUnavailable) as err:
            http.send(Batch(rows=buf.pending(4)[2:], historical=False))
        assert err.value.retry_after is not None and 1.0 <= err.value.retry_after <= 10.0
        assert http.probe()  # the health route is not rate limited: the cloud is up
        http.close()
        buf.close()


def test_cloud_killed_mid_sync_then_restarted(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        for i in range(0, 3000, 500):
            buf.append_many([real_event(i + k) for k in range(500)])
        running(http_worker(buf, cloud, key, batch_size=50))
        wait_until(lambda: cloud.count(DEVICE) >= 300)
        cloud.kill()  # kill -9 with requests in flight
        mid = cloud.count(DEVICE)
        time.sleep(0.3)
        cloud.start()
        wait_until(lambda: buf.stats().depth == 0, timeout=60)
        assert 300 <= mid < 3000
        assert_delivered(cloud, DEVICE, 3000)


def test_another_devices_key_is_refused_and_quarantined_not_retried(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path) as cloud:
        cloud.register(DEVICE)
        other_key = cloud.register("unit-other")
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(120)])
        halt = running(http_worker(buf, cloud, other_key, batch_size=50))
        wait_until(lambda: buf.stats().rejected == 120)
        time.sleep(0.3)  # room for (wrong) retries
        assert buf.health.counter("batches_sent") == 3  # each batch once, then quarantined
        assert cloud.count(DEVICE) == 0 and cloud.count("unit-other") == 0
        assert buf.stats().depth == 0 and buf.health.alarmed(EVENTS_REJECTED)
        rejected = buf.rejected()
        assert [r.seq for r in rejected] == list(range(1, 121))
        assert all("403 device_mismatch" in r.reason for r in rejected)
        # with the right key in place (the unit restarted), the operator puts them back
        halt()
        running(http_worker(buf, cloud, cloud.keys[DEVICE], batch_size=50))
        assert buf.requeue_rejected() == 120
        wait_until(lambda: buf.stats().depth == 0)
        assert_delivered(cloud, DEVICE, 120)
        assert not buf.health.alarmed(EVENTS_REJECTED)


def test_refused_event_is_quarantined_and_the_rest_flow(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        future = time.time() + 86_400  # a unit clock a day ahead: the cloud refuses it
        buf.append_many([real_event(i, when=future if i == 36 else None) for i in range(100)])
        running(http_worker(buf, cloud, key, batch_size=40))
        wait_until(lambda: buf.stats().depth == 0)
        stored = cloud.seqs(DEVICE)
        assert stored == [s for s in range(1, 101) if s != 37]
        assert [r.seq for r in buf.rejected()] == [37]
        assert "event_from_future" in buf.rejected()[0].reason
        assert buf.health.counter("batches_refused") == 1  # the cloud named the event
        assert cloud.highest_contiguous(DEVICE) == 36


def test_unreadable_row_is_found_by_bisection(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        buf.append_many([real_event(i) for i in range(64)])
        buf.db.execute('UPDATE outbox SET body = \'{"device_id": "unit-r1", "se\' WHERE seq = 23')
        running(http_worker(buf, cloud, key, batch_size=64))
        wait_until(lambda: buf.stats().depth == 0)
        assert cloud.seqs(DEVICE) == [s for s in range(1, 65) if s != 23]
        assert [r.seq for r in buf.rejected()] == [23]
        assert "400 malformed_json" in buf.rejected()[0].reason
        refused = buf.health.counter("batches_refused")
        assert 1 < refused <= 8  # log2(64) halvings at most, plus the last one


def test_desired_state_from_the_real_cloud_applies(tmp_path: Path) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register(DEVICE)
        cloud.put_desired(DEVICE, {"model_version": 7, "config": {"sync.batch_size": 77}})
        http = HttpTransport(cloud.url, Identity(device_id=DEVICE, api_key=key))
        models: list[int] = []
        handler = DesiredStateHandler(
            parse_config({"unit": {"device_id": DEVICE}}), health=Health(), on_model=models.append
        )
        assert handler.handle(http.get_desired() or b"", source="http")
        assert handler.config.sync.batch_size == 77 and models == [7]
        http.close()


# -- MQTT -----------------------------------------------------------------------------


def mqtt_worker(buf: Buffer, broker: Broker, key: str) -> tuple[SyncWorker, MqttTransport]:
    cfg = SyncConfig(
        mode="mqtt",
        mqtt_port=broker.port,
        batch_size=200,
        idle_s=0.02,
        ack_timeout_s=1.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
    )
    ident = Identity(device_id=buf.device_id, api_key=key)
    return mqtt_sync(buf, broker.host, broker.port, ident, cfg)


@pytest.mark.mqtt
def test_mqtt_broker_restart_mid_sync_two_ingest_workers(
    tmp_path: Path,
    mosquitto: Broker,
    running: Callable[[SyncWorker], Callable[[], None]],
    buffers: Buffers,
) -> None:
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=2) as cloud:
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        worker, t = mqtt_worker(buf, mosquitto, key)
        assert t.wait_connected(10)
        future = time.time() + 86_400
        n = 3000
        for i in range(0, n, 500):  # one refused event among them (clock a day ahead)
            buf.append_many(
                [real_event(k, when=future if k == 1234 else None) for k in range(i, i + 500)]
            )
        running(worker)
        wait_until(lambda: cloud.count(DEVICE) >= 500)
        mosquitto.stop()  # the broker goes away mid-sync: in-flight messages are lost
        mid = cloud.count(DEVICE)
        time.sleep(0.5)
        mosquitto.start()  # same port; workers and unit reconnect and resubscribe
        wait_until(lambda: buf.stats().depth == 0, timeout=60)
        t.close()
        assert mid < n
        rows = cloud.rows(DEVICE)
        assert sorted(r["seq"] for r in rows) == [s for s in range(1, n + 1) if s != 1235]
        assert all(r["mono_time"] == float(r["seq"] - 1) for r in rows)
        assert [r.seq for r in buf.rejected()] == [1235]
        reason = buf.rejected()[0].reason
        assert "refused by the cloud: event_from_future" in reason  # named in the cloud's ack
        assert cloud.highest_contiguous(DEVICE) == 1234
        assert worker.highest_contiguous == 1234


@pytest.mark.mqtt
def test_mqtt_ingest_down_then_killed_mid_sync(
    tmp_path: Path,
    mosquitto: Broker,
    running: Callable[[SyncWorker], Callable[[], None]],
    buffers: Buffers,
) -> None:
    with real_cloud(tmp_path, broker=mosquitto, ingest_workers=0) as cloud:  # ingest is down
        key = cloud.register(DEVICE)
        buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
        worker, t = mqtt_worker(buf, mosquitto, key)
        assert t.wait_connected(10)
        n = 2000
        buf.append_many([real_event(k) for k in range(n)])
        running(worker)
        wait_until(lambda: buf.health.counter("ack_timeouts") >= 1)
        assert cloud.count(DEVICE) == 0 and buf.stats().depth == n
        cloud.start_ingest(2)  # the cloud comes up
        wait_until(lambda: cloud.count(DEVICE) >= 400)
        for p in cloud.workers:  # and crashes mid-sync (kill -9), then comes back
            p.kill()
            p.wait()
        cloud.workers.clear()
        cloud.start_ingest(2)
        wait_until(lambda: buf.stats().depth == 0, timeout=60)
        t.close()
        assert_delivered(cloud, DEVICE, n)
        assert buf.stats().rejected == 0


def test_acks_out_of_order_keep_the_highest_and_ack_resends(
    tmp_path: Path, buffers: Buffers
) -> None:
    buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([real_event(i) for i in range(100)])
    worker = SyncWorker(buf, [], config=SyncConfig(mode="mqtt"))
    worker.state.ledger.sent(range(1, 101), 0.0)
    worker.state.max_sent = 100

    def ack(hc: int, stored: list[int]) -> int:
        doc = {"device_id": DEVICE, "highest_contiguous": hc, "stored": stored}
        return worker.handle_mqtt_ack(json.dumps(doc).encode())

    assert ack(60, list(range(31, 61))) == 60  # the later worker's ack comes first
    assert ack(30, list(range(1, 31))) == 0  # the earlier one: nothing left to do
    assert worker.highest_contiguous == 60
    assert [r.seq for r in buf.pending(10)] == list(range(61, 71))
    # a resend of rows the cloud already had: stored lists duplicates, hc covers them
    assert ack(100, [61, 62]) == 40
    assert buf.stats().depth == 0
    assert ack(500, []) == 0 and worker.highest_contiguous == 100  # never past what was sent


def test_refusals_in_an_ack_quarantine_at_once_and_silence_after_five_sends(
    tmp_path: Path, buffers: Buffers
) -> None:
    buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([real_event(i) for i in range(10)])
    worker = SyncWorker(buf, [], config=SyncConfig(mode="mqtt"))
    worker.state.ledger.sent(range(1, 11), 0.0)
    worker.state.max_sent = 10
    refused = [{"seq": 4, "reason": "event_from_future"}, {"seq": 77, "reason": "never sent"}]
    doc = {"device_id": DEVICE, "highest_contiguous": 3, "stored": [1, 2, 3], "refused": refused}
    assert worker.handle_mqtt_ack(json.dumps(doc).encode()) == 3
    assert [(r.seq, r.reason) for r in buf.rejected()] == [
        (4, "MQTT: refused by the cloud: event_from_future")
    ]
    assert buf.health.counter("acks_unknown") == 1  # 77 was never sent: ignored
    assert [r.seq for r in buf.pending(10)] == list(range(5, 11))
    # a refusal that cannot reach the unit: 6 stays unacked while its neighbours are acked
    for _ in range(MQTT_MAX_UNACKED):
        assert not buf.rejected()[1:]
        worker.state.ledger.sent([6, 7], 0.0)
        worker.state.ledger.accept([7])
        worker._carry_out(worker.state.ack_wait_over([6, 7], "mqtt", 0.0))
    assert [r.seq for r in buf.rejected()] == [4, 6]
    assert str(MQTT_MAX_UNACKED) in buf.rejected()[1].reason


def test_quarantine_is_durable_counted_and_never_resent(tmp_path: Path, buffers: Buffers) -> None:
    buf = buffers.open(tmp_path / "q.db", device_id=DEVICE)
    buf.append_many([real_event(i) for i in range(10)])
    assert buf.quarantine([3, 4, 99], "HTTP 422 invalid_value: test") == 2  # 99 is no row
    assert buf.health.counter(EVENTS_REJECTED) == 2
    buf.close()
    again = buffers.open(tmp_path / "q.db", device_id=DEVICE)  # a restart
    assert again.health.alarmed(EVENTS_REJECTED)
    assert again.stats().rejected == 2 and again.stats().depth == 8
    assert 3 not in [r.seq for r in again.pending(100)]
    again.ack_through(10)
    again.maintain()
    assert [(r.seq, r.reason) for r in again.rejected()] == [
        (3, "HTTP 422 invalid_value: test"),
        (4, "HTTP 422 invalid_value: test"),
    ]
    assert again.requeue_rejected([4]) == 1 and again.stats().rejected == 1
    assert [r.seq for r in again.pending(100)] == [4]
    assert again.health.alarmed(EVENTS_REJECTED)
    again.close()


@pytest.mark.mqtt
def test_mqtt_login_is_device_id_and_key_on_the_clouds_broker_files(
    tmp_path: Path, running: Callable[[SyncWorker], Callable[[], None]], buffers: Buffers
) -> None:
    from tests.support.mosquitto import mosquitto_binary, run_mosquitto_conf

    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed")
    with real_cloud(tmp_path, start=False) as cloud:
        key = cloud.register(DEVICE)
        conf, unit_port, service_port = cloud.write_broker_files(
            tmp_path, ("ingest-svc", "svc-secret")
        )
        log = tmp_path / "mosquitto.log"
        with run_mosquitto_conf(conf, unit_port, service_port, log=log) as broker:
            cloud.broker = broker
            cloud.start_ingest(2)  # they log in as the service user
            buf = buffers.open(tmp_path / "b.db", device_id=DEVICE)
            buf.append_many([real_event(i) for i in range(300)])
            worker, t = mqtt_worker(buf, broker, key)
            assert t.wait_connected(10)
            running(worker)
            wait_until(lambda: buf.stats().depth == 0)
            t.close()
            assert_delivered(cloud, DEVICE, 300)
            wrong = Identity(device_id=DEVICE, api_key=key + "x")
            intruder = MqttTransport(broker.host, broker.port, wrong)
            assert not intruder.wait_connected(2)
            intruder.close()
