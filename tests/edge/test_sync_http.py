"""HTTP sync against a real HTTP server on loopback that stores into its own SQLite."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edge.buffer import Buffer
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.transport import SyncRejected, SyncUnavailable
from edge.sync.worker import SyncWorker
from tests.edge.cloud_stand_in import IngestHttpServer, IngestStore
from tests.edge.events_support import event_fields
from tests.support.waiting import wait_until

DEVICE = "unit-1"


def make_worker(
    buf: Buffer, server: IngestHttpServer, *, key: str = "test-key", **cfg: object
) -> SyncWorker:
    settings = {"mode": "http", "base_url": server.base_url, "batch_size": 100, "idle_s": 0.02}
    settings |= {"backoff_initial_s": 0.02, "backoff_max_s": 0.2, "http_timeout_s": 5.0}
    config = SyncConfig(**(settings | cfg))  # type: ignore[arg-type]
    ident = Identity(device_id=buf.device_id, api_key=key)
    transport = HttpTransport(server.base_url, ident, timeout_s=config.http_timeout_s)
    return SyncWorker(buf, [transport], config=config, clock=buf._clock)


def drain(buf: Buffer, server: IngestHttpServer, device: str, *, max_steps: int = 10_000) -> int:
    """Send until the outbox is empty (retrying through failures); returns steps taken."""
    worker = make_worker(buf, server)
    steps = 0
    while buf.stats().depth and steps < max_steps:
        steps += 1
        try:
            worker.step()
        except SyncUnavailable:
            time.sleep(0.02)
    assert buf.stats().depth == 0, "outbox did not drain"
    return steps


@pytest.fixture
def cloud(tmp_path: Path):
    store = IngestStore(tmp_path / "cloud.db")
    with IngestHttpServer(store) as server:
        yield server
    store.close()


def run_worker(worker: SyncWorker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    t.start()
    return stop, t


def test_batches_reach_the_cloud_and_leave_the_outbox(
    tmp_path: Path, cloud: IngestHttpServer
) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(250)])
    drain(buf, cloud, DEVICE)
    assert cloud.store.seqs(DEVICE) == list(range(1, 251))
    assert max(cloud.batch_sizes) <= 100
    assert buf.health.counter("events_synced") == 250


def test_wrong_key_is_rejected_and_nothing_leaves(tmp_path: Path, cloud: IngestHttpServer) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(5)])
    worker = make_worker(buf, cloud, key="wrong")
    with pytest.raises(SyncRejected):
        worker.step()
    assert buf.stats().depth == 5 and cloud.store.count() == 0


def test_acks_for_seqs_never_sent_are_ignored(tmp_path: Path, cloud: IngestHttpServer) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(30)])
    cloud.bogus_acks = [25, 26, 999]  # 25, 26 exist but were not in the batch
    worker = make_worker(buf, cloud, batch_size=10)
    worker.step()
    assert [r.seq for r in buf.pending(100)] == list(range(11, 31))
    assert buf.health.counter("acks_unknown") == 3
    cloud.bogus_acks = []
    drain(buf, cloud, DEVICE)
    assert cloud.store.seqs(DEVICE) == list(range(1, 31))


def test_5xx_is_retried_with_backoff(tmp_path: Path, cloud: IngestHttpServer) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(40)])
    cloud.fail_next = 3
    stop, t = run_worker(make_worker(buf, cloud, batch_size=10))
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    t.join(5)
    assert buf.health.counter("sync_failures") == 3
    assert cloud.store.seqs(DEVICE) == list(range(1, 41))


def test_outage_then_reconnect_every_event_once(tmp_path: Path, cloud: IngestHttpServer) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    worker = make_worker(buf, cloud, batch_size=50)
    stop, t = run_worker(worker)
    buf.append_many([event_fields(i) for i in range(20)])
    wait_until(lambda: buf.stats().depth == 0)
    cloud.stop()  # the network goes down
    for i in range(30):
        buf.append_many([event_fields(100 + 10 * i + k) for k in range(10)])
    wait_until(lambda: buf.health.counter("sync_failures") >= 2)
    assert buf.stats().depth == 300
    cloud.start()  # back, same port
    wait_until(lambda: buf.stats().depth == 0)
    stop.set()
    t.join(5)
    assert cloud.store.seqs(DEVICE) == list(range(1, 321))


def test_server_restart_mid_sync(tmp_path: Path, cloud: IngestHttpServer) -> None:
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE)
    buf.append_many([event_fields(i) for i in range(3000)])
    stop, t = run_worker(make_worker(buf, cloud, batch_size=50))
    wait_until(lambda: cloud.store.count() >= 500)
    cloud.stop()
    mid = cloud.store.count()
    time.sleep(0.1)
    cloud.start()
    wait_until(lambda: buf.stats().depth == 0, timeout=60)
    stop.set()
    t.join(5)
    assert 500 <= mid < 3000
    assert cloud.store.seqs(DEVICE) == list(range(1, 3001))
    assert cloud.store.seqs(DEVICE, by="arrival") == list(range(1, 3001))  # all backlog: in order


def test_backlog_is_flagged_historical_while_live_flows(
    tmp_path: Path, cloud: IngestHttpServer
) -> None:
    now = [1_000_000.0]
    buf = Buffer(tmp_path / "b.db", device_id=DEVICE, clock=lambda: now[0])
    buf.append_many([event_fields(i) for i in range(300)])  # written during an outage
    now[0] += 3600  # an hour later the link is back
    buf.append_many([event_fields(1000 + i) for i in range(5)])  # live
    worker = make_worker(buf, cloud, batch_size=100, live_age_s=60)
    worker.step()  # live first
    buf.append_many([event_fields(2000 + i) for i in range(5)])  # more live during catch-up
    while buf.stats().depth:
        worker.step()
    rows = cloud.store.rows(DEVICE)
    assert sorted(r["seq"] for r in rows) == list(range(1, 311))
    hist = [r["seq"] for r in rows if r["historical"]]
    live = [r["seq"] for r in rows if not r["historical"]]
    assert hist == list(range(1, 301))  # backlog oldest first, every one flagged
    assert live == list(range(301, 311))
    arrival = [r["seq"] for r in rows]
    assert arrival.index(306) < arrival.index(300)  # live kept flowing before catch-up ended
