"""HTTP sync against the real cloud service on loopback, storing into its own SQLite file.

One ``shelfsense cloud serve`` child serves the module (:mod:`tests.edge.real_cloud`);
each test registers a unit of its own. Outages are the service stopped and started
again on the same port; what reached the cloud is read from its store.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.buffer import Buffer
from edge.buffer.policy import Batch
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.transport import SyncRejected, SyncUnavailable
from edge.sync.worker import SyncWorker
from models.wire import MqttAck
from tests.edge.conftest import Buffers
from tests.edge.real_cloud import RealCloud, real_cloud, real_event
from tests.support.waiting import wait_until

_units = itertools.count(1)


class CountingTransport(HttpTransport):
    """The HTTP transport, noting the size of every batch it hands to the cloud."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batch_sizes: list[int] = []

    def send(self, batch: Batch) -> list[int]:
        self.batch_sizes.append(len(batch.rows))
        return super().send(batch)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCloud]:
    with real_cloud(tmp_path_factory.mktemp("cloud")) as cloud:
        yield cloud


@pytest.fixture
def cloud(shared: RealCloud) -> RealCloud:
    shared.start()  # a test that stopped it and failed before starting it again
    return shared


@pytest.fixture
def unit(cloud: RealCloud) -> tuple[str, str]:
    """A unit of this test's own in the cloud: (device id, key)."""
    device = f"unit-h{next(_units)}"
    return device, cloud.register(device)


def make_worker(
    buf: Buffer, cloud: RealCloud, key: str, **cfg: object
) -> tuple[SyncWorker, CountingTransport]:
    settings = {"mode": "http", "base_url": cloud.url, "batch_size": 100, "idle_s": 0.02}
    settings |= {"backoff_initial_s": 0.02, "backoff_max_s": 0.2, "http_timeout_s": 5.0}
    config = SyncConfig(**(settings | cfg))  # type: ignore[arg-type]
    ident = Identity(device_id=buf.device_id, api_key=key)
    transport = CountingTransport(cloud.url, ident, timeout_s=config.http_timeout_s)
    return SyncWorker(buf, [transport], config=config, clock=buf._clock), transport


def drain(worker: SyncWorker, buf: Buffer, *, max_steps: int = 10_000) -> int:
    """Send until the outbox is empty (retrying through failures); returns steps taken."""
    steps = 0
    idle = threading.Event()
    while buf.stats().depth and steps < max_steps:
        steps += 1
        try:
            worker.step()
        except SyncUnavailable:
            idle.wait(0.02)
    assert buf.stats().depth == 0, "outbox did not drain"
    return steps


def run_worker(worker: SyncWorker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    t.start()
    return stop, t


def test_batches_reach_the_cloud_and_leave_the_outbox(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    buf.append_many([real_event(i) for i in range(250)])
    worker, transport = make_worker(buf, cloud, key)
    drain(worker, buf)
    assert cloud.seqs(device) == list(range(1, 251))
    assert max(transport.batch_sizes) <= 100
    assert buf.health.counter("events_synced") == 250


def test_wrong_key_is_rejected_and_nothing_leaves(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, _ = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    buf.append_many([real_event(i) for i in range(5)])
    worker, _ = make_worker(buf, cloud, "ssk_wrong")
    with pytest.raises(SyncRejected):
        worker.step()
    assert buf.stats().depth == 5 and cloud.count(device) == 0


def test_acks_for_seqs_never_sent_are_ignored(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    buf.append_many([real_event(i) for i in range(30)])
    worker, _ = make_worker(buf, cloud, key, batch_size=10)
    worker.step()  # 1..10 reach the cloud and are acked in its reply
    # An ack naming seqs that were never sent (25, 26 exist but were not in any batch):
    # the real service never writes one, so it is handed to the worker as the MQTT ack
    # path would, through the same ledger.
    bogus = MqttAck(device_id=device, highest_contiguous=0, stored=[25, 26, 999])
    worker.handle_mqtt_ack(bogus.model_dump_json().encode())
    assert [r.seq for r in buf.pending(100)] == list(range(11, 31))
    assert buf.health.counter("acks_unknown") == 3
    drain(worker, buf)
    assert cloud.seqs(device) == list(range(1, 31))


def test_failed_sends_are_retried_with_backoff(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    buf.append_many([real_event(i) for i in range(40)])
    cloud.stop()  # the next sends fail
    stop, t = run_worker(make_worker(buf, cloud, key, batch_size=10)[0])
    wait_until(lambda: buf.health.counter("sync_failures") >= 3)
    cloud.start()  # it fails on while the service starts up
    failed = buf.health.counter("sync_failures")
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    t.join(5)
    # every failed try counted once; none once the cloud listens (one try may have
    # been on its way as it came up)
    assert 3 <= failed <= buf.health.counter("sync_failures") <= failed + 1
    assert cloud.seqs(device) == list(range(1, 41))


def test_outage_then_reconnect_every_event_once(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    worker, _ = make_worker(buf, cloud, key, batch_size=50)
    stop, t = run_worker(worker)
    buf.append_many([real_event(i) for i in range(20)])
    wait_until(lambda: buf.stats().depth == 0)
    cloud.stop()  # the network goes down
    for i in range(30):
        buf.append_many([real_event(20 + 10 * i + k) for k in range(10)])
    wait_until(lambda: buf.health.counter("sync_failures") >= 2)
    assert buf.stats().depth == 300
    cloud.start()  # back, same port
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    t.join(5)
    assert cloud.seqs(device) == list(range(1, 321))


def test_server_restart_mid_sync(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    buf = buffers.open(tmp_path / "b.db", device_id=device)
    buf.append_many([real_event(i) for i in range(3000)])
    stop, t = run_worker(make_worker(buf, cloud, key, batch_size=50)[0])
    wait_until(lambda: cloud.count(device) >= 500, timeout=60)
    cloud.stop()
    mid = cloud.count(device)
    cloud.start()
    wait_until(lambda: buf.stats().depth == 0, timeout=60)
    stop.set()
    t.join(5)
    assert 500 <= mid < 3000
    assert cloud.seqs(device) == list(range(1, 3001))
    arrival = [r["seq"] for r in cloud.rows(device)]
    assert arrival == list(range(1, 3001))  # all backlog: in order


def test_backlog_is_flagged_historical_while_live_flows(
    tmp_path: Path, cloud: RealCloud, unit: tuple[str, str], buffers: Buffers
) -> None:
    device, key = unit
    now = [1_000_000.0]
    buf = buffers.open(tmp_path / "b.db", device_id=device, clock=lambda: now[0])
    buf.append_many([real_event(i) for i in range(300)])  # written during an outage
    now[0] += 3600  # an hour later the link is back
    buf.append_many([real_event(300 + i) for i in range(5)])  # live
    worker, _ = make_worker(buf, cloud, key, batch_size=100, live_age_s=60)
    worker.step()  # live first
    buf.append_many([real_event(305 + i) for i in range(5)])  # more live during catch-up
    while buf.stats().depth:
        worker.step()
    rows = cloud.rows(device)
    assert sorted(r["seq"] for r in rows) == list(range(1, 311))
    hist = [r["seq"] for r in rows if r["historical"]]
    live = [r["seq"] for r in rows if not r["historical"]]
    assert hist == list(range(1, 301))  # backlog oldest first, every one flagged
    assert live == list(range(301, 311))
    arrival = [r["seq"] for r in rows]
    assert arrival.index(306) < arrival.index(300)  # live kept flowing before catch-up ended
