"""Buffer and sync benchmark: commit rate, backlog drain, crash soak, accelerated outage.

1. **Commit rate**: events committed per second through :class:`~edge.buffer.Buffer`
   (validation, seq numbering, the seq row, the cap check; ``synchronous=FULL``)
   against plain ``sqlite3`` ``executemany`` of the same rows into the same table with
   the same pragmas and the same transaction size, in the same run. Batch sizes 1
   (one event per decision), 4 (a decision with its level events) and 32, 500
   transactions each (``--quick``: 30). Median of 5 (3) alternating runs; the ratio target is >= 0.5 where the agent batches.
2. **Drain**: a backlog of 100k events (``--quick``: 1.5k) sent by the sync worker to
   the real cloud service over loopback HTTP and, separately, over a real Mosquitto to
   its MQTT ingest workers; events per second until the outbox is empty, and a check
   that the cloud has every seq exactly once. Baseline, same run: the same backlog
   posted by the HTTP transport alone (no worker, no acks marked in the buffer).
3. **Crash soak**: ``kill -9`` of a unit writing and syncing at 50 random moments
   (``--quick``: 2); committed events lost and cloud duplicates must both be 0.
4. **Outage**: 24 h of store traffic (``--quick``: 0.5 h) written at accelerated time
   with the cloud down, then the cloud comes back while live events keep coming:
   every event once, order intact, the backlog flagged historical, catch-up time.

The cloud is always the real service: ``shelfsense cloud serve`` on loopback with a
fresh SQLite store (HTTP), and two real MQTT ingest workers on the shared subscription
of a real Mosquitto (MQTT). Events carry current wall times (the real cloud refuses
events older than 90 days or from the future), so the outage clock runs from ``hours``
ago up to now.

Run: ``.venv/bin/python -m tests.bench.bench_buffer [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.buffer import Buffer
from edge.buffer.schema import pragmas
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.worker import SyncWorker
from tests.edge.events_support import event_fields
from tests.edge.real_cloud import RealCloud, real_cloud, real_event
from tests.edge.sync_support import mqtt_sync
from tests.support.mosquitto import mosquitto_binary, run_mosquitto

DEVICE = "bench-unit"
RATIO_TARGET = 0.5


@dataclass
class Results:
    """Everything the bench measured (figures for the README, facts for the smoke test)."""

    commit: list[dict[str, Any]] = field(default_factory=list)
    drain: list[dict[str, Any]] = field(default_factory=list)
    crash: dict[str, Any] = field(default_factory=dict)
    outage: dict[str, Any] = field(default_factory=dict)


# -- 1. commit rate -----------------------------------------------------------------


def _plain_rows(n: int, batch: int, tmp: Path) -> list[list[tuple[int, float, str]]]:
    """The exact rows the buffer writes (made once by a scratch buffer), in batches."""
    scratch = Buffer(tmp / "scratch.db", device_id=DEVICE)
    out: list[list[tuple[int, float, str]]] = []
    for i in range(0, n, batch):
        evs = scratch.append_many([event_fields(k) for k in range(i, min(n, i + batch))])
        out.append([(e.seq, time.time(), e.model_dump_json()) for e in evs])
    scratch.close()
    return out


def _time_buffer(path: Path, batches: list[list[dict[str, Any]]]) -> float:
    buf = Buffer(path, device_id=DEVICE)
    t0 = time.perf_counter()
    for b in batches:
        buf.append_many(b)
    dt = time.perf_counter() - t0
    buf.close()
    return dt


def _time_plain(path: Path, rows: list[list[tuple[int, float, str]]]) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    for p in pragmas("FULL"):
        conn.execute(p)
    conn.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, created FLOAT NOT NULL,"
        " body TEXT NOT NULL, synced_at FLOAT)"
    )
    t0 = time.perf_counter()
    for b in rows:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO outbox (seq, created, body) VALUES (?, ?, ?)", b)
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return dt


def bench_commit(tmp: Path, scale: int, repeats: int) -> list[dict[str, Any]]:
    """Events/s through the buffer vs plain executemany, per batch size.

    ``scale`` transactions per run at each batch size (one fsync each).
    """
    out = []
    for batch in (1, 4, 32):
        n = scale * batch
        fields = [
            [event_fields(k) for k in range(i, min(n, i + batch))] for i in range(0, n, batch)
        ]
        rows = _plain_rows(n, batch, tmp / f"rows-{batch}")
        ours: list[float] = []
        plain: list[float] = []
        for r in range(repeats):
            d = tmp / f"c-{batch}-{r}"
            d.mkdir(parents=True)
            plain.append(n / _time_plain(d / "plain.db", rows))
            ours.append(n / _time_buffer(d / "buffer.db", fields))
        ratios = [o / p for o, p in zip(ours, plain, strict=True)]
        out.append(
            {
                "batch": batch,
                "events": n,
                "buffer_eps": statistics.median(ours),
                "plain_eps": statistics.median(plain),
                "ratio": statistics.median(ratios),
            }
        )
    return out


# -- 2. drain -----------------------------------------------------------------------


def _fill(path: Path, n: int, make: Callable[[int], dict[str, Any]] = event_fields) -> Buffer:
    buf = Buffer(path, device_id=DEVICE)
    for i in range(0, n, 500):
        buf.append_many([make(k) for k in range(i, min(n, i + 500))])
    return buf


def _drain(buf: Buffer, worker: SyncWorker, store: RealCloud, n: int) -> dict[str, Any]:
    stop = threading.Event()
    t0 = time.perf_counter()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    while buf.stats().depth:
        time.sleep(0.05)
    dt = time.perf_counter() - t0
    stop.set()
    th.join(10)
    seqs = store.seqs(DEVICE)
    return {
        "events": n,
        "seconds": dt,
        "eps": n / dt,
        "all_once": seqs == list(range(1, n + 1)),
        "stored": len(seqs),
        "rejected": buf.stats().rejected,
    }


def bench_post_real(tmp: Path, n: int) -> dict[str, Any]:
    """Baseline of the drain: the same backlog posted to the same real cloud in batches of
    500 by the HTTP transport alone (no worker, no acks marked in the buffer)."""
    from edge.buffer.policy import Batch

    device = "bench-raw"
    buf = Buffer(tmp / "raw.db", device_id=device)
    for i in range(0, n, 500):
        buf.append_many([real_event(k) for k in range(i, min(n, i + 500))])
    rows = buf.pending(n)
    with real_cloud(tmp) as cloud:
        key = cloud.register(device)
        http = HttpTransport(cloud.url, Identity(device_id=device, api_key=key))
        t0 = time.perf_counter()
        for i in range(0, n, 500):
            http.send(Batch(rows=rows[i : i + 500], historical=True))
        dt = time.perf_counter() - t0
        http.close()
        stored = cloud.seqs(device)
    buf.close()
    return {
        "transport": "http, posts only",
        "batch": 500,
        "events": n,
        "seconds": dt,
        "eps": n / dt,
        "all_once": stored == list(range(1, n + 1)),
        "stored": len(stored),
        "rejected": 0,
    }


# -- 3. crash soak, 4. outage: against the real cloud service ------------------------


def bench_drain_http_real(tmp: Path, n: int) -> dict[str, Any]:
    """Backlog drain over loopback HTTP into the real cloud's store."""
    buf = _fill(tmp / "rdh.db", n, real_event)
    with real_cloud(tmp) as cloud:
        key = cloud.register(DEVICE)
        cfg = SyncConfig(mode="http", base_url=cloud.url, batch_size=500, idle_s=0.01)
        ident = Identity(device_id=DEVICE, api_key=key)
        worker = SyncWorker(buf, [HttpTransport(cloud.url, ident)], config=cfg)
        res = _drain(buf, worker, cloud, n)
    buf.close()
    return {"transport": "http", "batch": 500, **res}


def bench_drain_mqtt_real(tmp: Path, n: int) -> dict[str, Any] | None:
    """Backlog drain over a real Mosquitto into the real store by two real ingest workers."""
    if mosquitto_binary() is None:
        return None
    buf = _fill(tmp / "rdm.db", n, real_event)
    with run_mosquitto(tmp) as broker, real_cloud(tmp, broker=broker, start=False) as cloud:
        key = cloud.register(DEVICE)
        cfg = SyncConfig(mode="mqtt", mqtt_port=broker.port, batch_size=500, idle_s=0.01)
        ident = Identity(device_id=DEVICE, api_key=key)
        worker, t = mqtt_sync(buf, broker.host, broker.port, ident, cfg)
        t.wait_connected(10)
        res = _drain(buf, worker, cloud, n)
        res["ack_timeouts"] = buf.health.counter("ack_timeouts")
        t.close()
    buf.close()
    return {"transport": "mqtt", "batch": 500, **res}


def _run_and_kill_unit(
    db: Path, seed: int, cloud: RealCloud, key: str, rng: random.Random
) -> list[int]:
    import os
    import signal
    import subprocess

    from tests.edge.real_cloud import REPO

    args = [sys.executable, "-m", "tests.edge.real_cloud", "unit", str(db), str(seed)]
    args += [cloud.url, DEVICE, key]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.strip():
        raise RuntimeError("the unit produced nothing")
    time.sleep(rng.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    lines = (first + rest).decode().split("\n")
    return [int(x) for x in lines[:-1] if x.strip()]  # the last line may be cut


def bench_crash_real(tmp: Path, iterations: int) -> dict[str, Any]:
    """kill -9 of a unit writing and syncing to the real cloud; then drain and check."""
    rng = random.Random(2026)
    db = tmp / "rcrash.db"
    with real_cloud(tmp) as cloud:
        key = cloud.register(DEVICE)
        committed: list[int] = []
        backwards = 0
        for i in range(iterations):
            got = _run_and_kill_unit(db, 2026_000 + i, cloud, key, rng)
            if committed and got and got[0] <= committed[-1]:
                backwards += 1
            committed += got
        buf = Buffer(db, device_id=DEVICE)
        present = {r[0] for r in buf.db.execute("SELECT seq FROM outbox")}
        synced_before = cloud.count(DEVICE)
        cfg = SyncConfig(mode="http", base_url=cloud.url, batch_size=200, idle_s=0.01)
        worker = SyncWorker(
            buf, [HttpTransport(cloud.url, Identity(device_id=DEVICE, api_key=key))], config=cfg
        )
        _drain(buf, worker, cloud, len(present))
        stored = [r["seq"] for r in cloud.rows(DEVICE)]
        rejected = buf.stats().rejected
        buf.close()
    return {
        "kills": iterations,
        "committed": len(committed),
        "synced_before_drain": synced_before,
        "lost": len(set(committed) - set(stored)),
        "cloud_duplicates": len(stored) - len(set(stored)),
        "gaps": len(set(range(1, max(present) + 1)) - set(stored)),
        "seq_backwards": backwards,
        "rejected": rejected,
    }


def bench_outage_real(tmp: Path, hours: float, per_hour: int) -> dict[str, Any]:
    """Hours of traffic with the real cloud down (simulated clock up to now), then catch-up."""
    rng = random.Random(5)
    real_now = time.time()
    now = [real_now - hours * 3600 - 600]
    buf = Buffer(tmp / "routage.db", device_id=DEVICE, clock=lambda: now[0])
    with real_cloud(tmp, start=False) as cloud:  # the cloud is down from the start
        key = cloud.register(DEVICE)
        cfg = SyncConfig(
            mode="http",
            base_url=cloud.url,
            batch_size=200,
            idle_s=0.01,
            backoff_initial_s=0.01,
            backoff_max_s=0.1,
            live_age_s=60,
        )
        ident = Identity(device_id=DEVICE, api_key=key)
        worker = SyncWorker(
            buf, [HttpTransport(cloud.url, ident, timeout_s=5)], config=cfg, clock=lambda: now[0]
        )
        stop = threading.Event()
        th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        th.start()
        i = 0
        end = real_now - 600
        while now[0] < end:
            now[0] += rng.expovariate(per_hour / 3600.0)
            n = rng.choice((1, 1, 1, 2, 4))
            buf.append_many([real_event(i + k, when=now[0]) for k in range(n)])
            i += n
        backlog = buf.stats().depth
        failures = buf.health.counter("sync_failures")
        now[0] = time.time()  # from here time is real
        cloud.start()  # back on the same port
        t0 = time.perf_counter()
        live = 0
        # live events keep coming until no backlog row is left unsent
        while buf.pending(1, before=now[0] - cfg.live_age_s):
            now[0] = time.time()
            buf.append_many([real_event(i + live, when=now[0])])
            live += 1
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        while buf.stats().depth:
            now[0] = time.time()
            time.sleep(0.01)
        stop.set()
        th.join(10)
        rows = cloud.rows(DEVICE)
        stored = sorted(r["seq"] for r in rows)
        hist = [r["seq"] for r in rows if r["historical"]]
        rejected = buf.stats().rejected
    buf.close()
    return {
        "hours": hours,
        "backlog": backlog,
        "failures_while_down": failures,
        "live_during_catchup": live,
        "catchup_s": dt,
        "all_once": stored == list(range(1, backlog + live + 1)),
        "historical_in_order": hist == sorted(hist),
        "historical": len(hist),
        "rejected": rejected,
    }


# -- report -------------------------------------------------------------------------


def report(res: Results) -> str:
    """Markdown tables of the results."""
    lines = [
        "### Commit rate (synchronous=FULL, WAL)",
        "",
        "| batch | events | buffer ev/s | plain executemany ev/s | ratio (median) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in res.commit:
        lines.append(
            f"| {c['batch']} | {c['events']} | {c['buffer_eps']:,.0f} | {c['plain_eps']:,.0f}"
            f" | {c['ratio']:.2f} |"
        )
    lines += [
        "",
        "### Backlog drain",
        "",
        "Into the real cloud service (SQLite store); the baseline is the same backlog posted"
        " by the HTTP transport alone, with no worker and no buffer bookkeeping.",
        "",
        "| transport | events | seconds | ev/s | vs posts only | every seq once"
        " | quarantined | ack timeouts |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    base = next((d["eps"] for d in res.drain if d["transport"] == "http, posts only"), None)
    for d in res.drain:
        ratio = f"{d['eps'] / base:.2f}" if base else "-"
        lines.append(
            f"| {d['transport']} | {d['events']} | {d['seconds']:.1f} | {d['eps']:,.0f}"
            f" | {ratio} | {d['all_once']} | {d.get('rejected', '-')}"
            f" | {d.get('ack_timeouts', '-')} |"
        )
    c = res.crash
    lines += [
        "",
        "### Crash soak (kill -9 while writing and syncing over HTTP to the real cloud)",
        "",
        "| kills | committed | synced before the drain | lost | cloud duplicates | gaps"
        " | quarantined |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {c['kills']} | {c['committed']} | {c['synced_before_drain']} | {c['lost']}"
        f" | {c['cloud_duplicates']} | {c['gaps']} | {c['rejected']} |",
    ]
    o = res.outage
    lines += [
        "",
        "### Outage at accelerated time (the real cloud stopped, then started)",
        "",
        "| hours down | backlog | live during catch-up | catch-up s | every event once |"
        " historical flagged, in order | quarantined |",
        "| ---: | ---: | ---: | ---: | --- | --- | ---: |",
        f"| {o['hours']:g} | {o['backlog']} | {o['live_during_catchup']} | {o['catchup_s']:.1f}"
        f" | {o['all_once']} | {o['historical']} / {o['historical_in_order']}"
        f" | {o.get('rejected', '-')} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> Results:
    """Run the benchmark, print the tables, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    quick = args.quick
    res = Results()
    with tempfile.TemporaryDirectory(prefix="bench-buffer-") as d:
        tmp = Path(d)
        res.commit = bench_commit(tmp, 30 if quick else 500, 3 if quick else 5)
        n = 1_500 if quick else 100_000
        res.drain.append(bench_post_real(tmp, n))
        res.drain.append(bench_drain_http_real(tmp, n))
        mq = bench_drain_mqtt_real(tmp, n)
        if mq is not None:
            res.drain.append(mq)
        res.crash = bench_crash_real(tmp, 2 if quick else 50)
        res.outage = bench_outage_real(tmp, 0.5 if quick else 24, 400)
    print(report(res))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
