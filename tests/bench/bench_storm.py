"""A store-wide outage ending: every unit sends its backlog at once while the backend polls.

``cloud serve`` runs in its own process (``--workers``) on SQLite or PostgreSQL;
:mod:`tests.bench.fleet` drains ``--units`` backlogs of ``--events`` events each
(gzip batches, 15 s timeout, full-jitter backoff, Retry-After honoured) while
``--readers`` backend clients poll stock every 100 ms. Reported: drain time, events
lost and resent, 503s and timeouts, other 5xx, read p99 / max during the drain, the
server's peak RSS (all its processes). Run:
``.venv/bin/python -m tests.bench.bench_storm [--quick] [--pg] [--units N] [--events N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from sqlalchemy import func, select

from cloud.keys import Role
from cloud.store import open_store
from cloud.store.tables import events
from tests.bench.fleet import FleetReport, FleetUnit, run_fleet
from tests.cloud import traffic
from tests.cloud.support import make_key, register_fleet
from tests.support.mosquitto import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def server(url: str, workers: int) -> Iterator[tuple[int, int]]:
    """``shelfsense cloud serve`` in its own process on a free port: (port, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "SHELFSENSE_CLOUD_RATE_PER_S": "0",
        "SHELFSENSE_CLOUD_MAX_PAST_DAYS": "3650",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "shelfsense", "cloud", "serve", "--database-url", url,
           "--port", str(port), "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc, timeout=60)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_peak(pid: int, stop: threading.Event, out: list[int]) -> None:
    """Record the peak RSS of ``pid`` and its children until ``stop``."""
    proc = psutil.Process(pid)
    peak = 0
    while not stop.is_set():
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs))
        except psutil.Error:
            pass
        stop.wait(0.5)
    out.append(peak)


def storm(
    url: str, units: int, per_unit: int, batch: int, readers: int, workers: int
) -> dict[str, object]:
    """One storm on the database at ``url``; its figures."""
    store = open_store(url, pool_size=2)
    by_device: dict[str, list[dict[str, object]]] = {}
    home: dict[str, tuple[str, str]] = {}
    for ev in traffic.events(
        units * per_unit, seed=7, device_prefix="storm-", stores=1, bays=units
    ):
        by_device.setdefault(ev.device_id, []).append(ev.model_dump(mode="json"))
        home[ev.device_id] = (ev.store, ev.bay)
    tokens = register_fleet(store, home)
    reader = make_key(store, Role.BACKEND)
    fleet = [FleetUnit(d, tokens[d], evs) for d, evs in by_device.items()]
    sent = sum(len(u.backlog) for u in fleet)
    peak: list[int] = []
    with server(url, workers=workers) as (port, pid):
        stop = threading.Event()
        watcher = threading.Thread(target=rss_peak, args=(pid, stop, peak))
        watcher.start()
        report: FleetReport = run_fleet(
            f"http://127.0.0.1:{port}", fleet, batch=batch, reader_token=reader, readers=readers
        )
        stop.set()
        watcher.join()
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
    store.dispose()
    return {
        "units": len(fleet),
        "events": sent,
        "drain s": round(report.drain_s, 1),
        "lost": sent - stored,
        "resent": report.resent_events,
        "503": report.overloaded,
        "timeouts": report.timeouts,
        "other 5xx": report.errors_5xx,
        "stock p99 ms": round(report.read_ms(0.99), 1),
        "stock max ms": round(1000 * max(report.reads, default=0), 1),
        "reads": len(report.reads),
        "RSS MB": round(peak[0] / 2**20) if peak else 0,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--pg", action="store_true", help="PostgreSQL (2 workers) instead of SQLite")
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--events", type=int, default=None, help="backlog events per unit")
    p.add_argument("--readers", type=int, default=20)
    args = p.parse_args(argv)
    units = args.units or (10 if args.quick else 100)
    per_unit = args.events or (200 if args.quick else 1000)
    if args.pg:
        from tests.support.postgres import pg_schema

        with pg_schema() as url:
            row = storm(url, units, per_unit, 500, args.readers, workers=2)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            row = storm(f"sqlite:///{tmp}/storm.db", units, per_unit, 500, args.readers, workers=1)
    print("| " + " | ".join(row) + " |")
    print("|" + " --- |" * len(row))
    print("| " + " | ".join(str(v) for v in row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
