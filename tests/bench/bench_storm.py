"""A store-wide outage ending: every unit sends its backlog at once while the backend polls.

``cloud serve`` runs in its own process (``--workers``) on SQLite or PostgreSQL;
:mod:`tests.bench.fleet` drains ``--units`` backlogs of ``--events`` events each
(gzip batches, 15 s timeout, full-jitter backoff, Retry-After honoured) while
``--readers`` backend clients poll the stock of a store (units come in stores of 10
bays; reader ``i`` reads store ``i``), its interest per SKU over the last 24 h (the
next SKU each time) and its feed, one route every 100 ms each. Reported: drain time, events lost
and resent, 503s and timeouts, other 5xx, the server's peak RSS (all its processes,
ingest processes included), and read p50 / p99 per route during the drain against
the same reads for ``--quiet-s`` seconds just before it (the baseline: same server,
no storm). The cloud already holds as many events from before the outage as the
backlog brings (stored first, through the store path), and interest is read over
the day before the outage, so quiet and storm reads ask for the same rows. Run: ``.venv/bin/python -m tests.bench.bench_storm [--quick] [--pg]
[--units N] [--events N] [--ingest-processes N]``.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select

from cloud.ingest import store_events
from cloud.keys import Role
from cloud.store import Store, open_store
from cloud.store.tables import events
from cloud.tenancy import bind, registrations
from models.wire import ShelfEvent
from tests.bench.fleet import (
    ROUTES,
    Batch,
    FleetReport,
    FleetUnit,
    ReadPlan,
    encode_batch,
    quantile_ms,
    read_quietly,
    run_fleet,
)
from tests.cloud import traffic
from tests.cloud.support import make_key, register_fleet
from tests.support.mosquitto import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SPAN = timedelta(days=20)  # the history and the backlog together


@contextmanager
def server(url: str, workers: int, ingest_processes: int = 0) -> Iterator[tuple[int, int]]:
    """``shelfsense cloud serve`` in its own process on a free port: (port, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "SHELFSENSE_CLOUD_RATE_PER_S": "0",
        "SHELFSENSE_CLOUD_MAX_PAST_DAYS": "3650",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "shelfsense", "cloud", "serve", "--database-url", url,
           "--port", str(port), "--workers", str(workers),
           "--ingest-processes", str(ingest_processes)]  # fmt: skip
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


def read_row(name: str, reads: dict[str, list[float]]) -> dict[str, object]:
    """p50 / p99 per route of one set of reads."""
    row: dict[str, object] = {"reads": name}
    for route in ROUTES:
        n = len(reads.get(route, []))
        row[route] = (
            f"{quantile_ms(reads, 0.5, route):.1f} / {quantile_ms(reads, 0.99, route):.1f} ({n})"
        )
    return row


def storm(
    url: str,
    units: int,
    per_unit: int,
    batch: int,
    readers: int,
    workers: int,
    ingest_processes: int = 0,
    quiet_s: float = 20.0,
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """One storm on the database at ``url``: its figures, and the reads quiet and during the drain."""
    store = open_store(url, pool_size=2)
    end = datetime.now(UTC) - timedelta(minutes=1)
    outage = end - SPAN / 2  # the older half is stored before; the newer half is the backlog
    stores, bays = max(1, units // 10), min(units, 10)  # a chain of 10-bay stores
    home = {d: (st, b) for d, st, b in traffic.fleet_shape(stores, bays, slots=8)}
    home = {"storm-" + d: where for d, where in home.items()}
    tokens = register_fleet(store, home)
    with store.engine.connect() as conn:
        regs = registrations(conn, list(home))
    # streamed: history stored and backlogs encoded 500 at a time, never all in memory
    skus: dict[str, set[str]] = {}
    history: dict[str, list[ShelfEvent]] = {}
    backlog: dict[str, list[dict[str, object]]] = {}
    encoded: dict[str, list[Batch]] = {d: [] for d in home}
    held = sent = 0
    for ev in traffic.events(
        2 * units * per_unit, seed=7, device_prefix="storm-", stores=stores, bays=bays,
        span=SPAN, end=end,
    ):  # fmt: skip
        if ev.sku:
            skus.setdefault(ev.store, set()).add(ev.sku)
        if ev.wall_time < outage:
            got = history.setdefault(ev.device_id, [])
            got.append(ev)
            if len(got) == batch:
                held += preload(store, regs, history.pop(ev.device_id), held)
        else:
            evs = backlog.setdefault(ev.device_id, [])
            evs.append(ev.model_dump(mode="json"))
            if len(evs) == batch:
                encoded[ev.device_id].append(encode_batch(ev.device_id, backlog.pop(ev.device_id)))
                sent += batch
    for rest in history.values():
        held += preload(store, regs, rest, held)
    for device, evs in backlog.items():
        encoded[device].append(encode_batch(device, evs))
        sent += len(evs)
    print(
        f"{len(home):,} units, {held:,} events stored before the outage, {sent:,} in "
        "backlogs; the backlogs go now",
        file=sys.stderr,
        flush=True,
    )
    reader = make_key(store, Role.BACKEND)
    fleet = [FleetUnit(d, tokens[d], batches) for d, batches in encoded.items() if batches]
    plan = ReadPlan(  # interest over the day before the outage: the same rows quiet or not
        stores=tuple((st, tuple(sorted(ss))) for st, ss in sorted(skus.items())),
        interest_since=(outage - timedelta(hours=24)).isoformat(),
        interest_until=outage.isoformat(),
    )
    peak: list[int] = []
    with server(url, workers=workers, ingest_processes=ingest_processes) as (port, pid):
        base = f"http://127.0.0.1:{port}"
        stop = threading.Event()
        watcher = threading.Thread(target=rss_peak, args=(pid, stop, peak))
        watcher.start()
        quiet, quiet_errors = read_quietly(base, reader, readers, quiet_s, plan)
        report: FleetReport = run_fleet(
            base, fleet, reader_token=reader, readers=readers, plan=plan
        )
        stop.set()
        watcher.join()
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
    store.dispose()
    row: dict[str, object] = {
        "units": len(fleet),
        "events": sent,
        "ingest processes": ingest_processes,
        "drain s": round(report.drain_s, 1),
        "lost": sent + held - stored,
        "resent": report.resent_events,
        "503": report.overloaded,
        "timeouts": report.timeouts,
        "other 5xx": report.errors_5xx,
        "connection errors": ", ".join(f"{n} {k}" for k, n in report.transport_errors.items())
        or "0",
        "read errors": report.read_errors + quiet_errors,
        "RSS MB": round(peak[0] / 2**20) if peak else 0,
    }
    reads = [read_row("quiet (baseline)", quiet), read_row("during the drain", report.reads)]
    ratio: dict[str, object] = {"reads": "p99 ratio, drain / quiet"}
    for route in ROUTES:
        q99 = quantile_ms(quiet, 0.99, route)
        ratio[route] = f"{quantile_ms(report.reads, 0.99, route) / q99:.2f}" if q99 else "-"
    return row, [*reads, ratio]


def preload(store: Store, regs: dict[str, Any], evs: list[ShelfEvent], before: int) -> int:
    """Store one unit's events from before the outage (the store path, no HTTP); how many.

    ``before``: how many were stored already (for the progress line every 100,000).
    """
    chunk = [bind(ev, regs[ev.device_id], where="history") for ev in evs]
    store_events(store, chunk, now=datetime.now(UTC))
    if (before + len(chunk)) // 100_000 > before // 100_000:
        print(
            f"  {before + len(chunk):,} events stored before the outage",
            file=sys.stderr,
            flush=True,
        )
    return len(chunk)


def table(rows: list[dict[str, object]]) -> str:
    """Markdown table of ``rows`` (same keys each)."""
    head = rows[0]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--pg", action="store_true", help="PostgreSQL (2 workers) instead of SQLite")
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--events", type=int, default=None, help="backlog events per unit")
    p.add_argument("--readers", type=int, default=20)
    p.add_argument(
        "--ingest-processes", type=int, default=0, help="cloud serve --ingest-processes N"
    )
    p.add_argument("--quiet-s", type=float, default=20.0, help="seconds of baseline reads")
    args = p.parse_args(argv)
    units = args.units or (10 if args.quick else 100)
    per_unit = args.events or (200 if args.quick else 1000)
    extra = (args.ingest_processes, 5.0 if args.quick else args.quiet_s)
    if args.pg:
        from tests.support.postgres import pg_schema

        with pg_schema() as url:
            row, reads = storm(url, units, per_unit, 500, args.readers, 2, *extra)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            row, reads = storm(
                f"sqlite:///{tmp}/storm.db", units, per_unit, 500, args.readers, 1, *extra
            )
    print(table([row]))
    print()
    print(table(reads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
