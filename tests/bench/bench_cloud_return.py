"""How soon a unit's backlog reaches the cloud after the cloud comes back.

A unit with the default ``[sync]`` settings (HTTP) keeps deciding while the real
cloud service (``shelfsense cloud serve``, fresh SQLite) is stopped for the outage,
then the service starts again on the same port. Measured: seconds from the moment
the cloud listens again until every event is stored in the cloud, and whether every
event arrived once and in order. ``python -m tests.bench.bench_cloud_return
[--quick] [--outage S] [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.buffer import Buffer
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.worker import SyncWorker
from tests.edge.real_cloud import real_cloud, real_event

DEVICE = "unit-return"


def one_outage(tmp: Path, outage_s: float, per_s: float) -> dict[str, Any]:
    """Cloud down for ``outage_s`` while events come at ``per_s``; then up: time to drain."""
    buf = Buffer(tmp / "return.db", device_id=DEVICE)
    with real_cloud(tmp) as cloud:
        key = cloud.register(DEVICE)
        cfg = SyncConfig(mode="http", base_url=cloud.url)  # the shipped defaults otherwise
        ident = Identity(device_id=DEVICE, api_key=key)
        worker = SyncWorker(buf, [HttpTransport(cloud.url, ident)], config=cfg)
        stop = threading.Event()
        th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        th.start()
        buf.append_many([real_event(0)])
        deadline = time.monotonic() + 30
        while buf.stats().depth and time.monotonic() < deadline:
            time.sleep(0.05)
        cloud.stop()
        i, t_end = 1, time.monotonic() + outage_s
        while time.monotonic() < t_end:
            buf.append_many([real_event(i)])
            i += 1
            time.sleep(1.0 / per_s)
        backlog = buf.stats().depth
        failures = buf.health.counter("sync_failures")
        cloud.start()  # returns once the service listens
        t0 = time.monotonic()
        while cloud.count(DEVICE) < i and time.monotonic() - t0 < 900:
            time.sleep(0.05)
        arrived_s = time.monotonic() - t0
        stop.set()
        worker.wake.set()
        th.join(30)
        worker.close()
        rows = cloud.rows(DEVICE)
    buf.close()
    seqs = sorted(r["seq"] for r in rows)
    hist = [r["seq"] for r in rows if r["historical"]]
    live = [r["seq"] for r in rows if not r["historical"]]
    return {
        "outage_s": outage_s,
        "backlog": backlog,
        "failures_while_down": failures,
        "arrived_s": arrived_s,
        # live and backlog batches alternate: each stream arrives in order
        "all_once_in_order": seqs == list(range(1, i + 1))
        and hist == sorted(hist)
        and live == sorted(live),
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the outage ``--runs`` times and print one line per run and the median."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a 20 s outage")
    ap.add_argument("--outage", type=float, default=None, help="outage seconds (default 120)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--per-s", type=float, default=0.55, help="events per second meanwhile")
    args = ap.parse_args(argv)
    outage = args.outage if args.outage is not None else (20.0 if args.quick else 120.0)
    out = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            res = one_outage(Path(d), outage, args.per_s)
        out.append(res)
        print(
            f"run {n + 1}: outage {res['outage_s']:.0f} s, backlog {res['backlog']}, "
            f"{res['failures_while_down']} failed tries while down, all arrived "
            f"{res['arrived_s']:.1f} s after the cloud was back, "
            f"every event once, live and backlog each in order: {res['all_once_in_order']}",
            flush=True,
        )
    med = statistics.median(r["arrived_s"] for r in out)
    print(f"median: events arrive {med:.1f} s after the cloud is back")
    return out


if __name__ == "__main__":
    main()
