"""Ingest throughput of the cloud store, SQLite and PostgreSQL, against a plain executemany.

For each database, in the same run and the same database, the same rows go in
three ways, in batches of ``--batch`` events, one transaction per batch:

* ``executemany``: the DB-API cursor's ``executemany`` of pre-built row tuples
  into ``events`` and ``windows`` (the baseline: no checks, no stock, no progress,
  no HTTP);
* ``store_events``: the service's store path (duplicate check, insert-or-ignore,
  current stock, interest per hour, highest contiguous seq) on already-parsed events;
* ``HTTP``: gzip JSON batches posted to ``shelfsense cloud serve`` (a separate
  process with two uvicorn workers) by four client threads: parsing,
  validation, auth and the store path (``BENCH_WORKERS`` / ``BENCH_CLIENTS``
  change those numbers).

The events are a fleet's mix at a busy bay's pace (each unit's two batches span
two hours); interest events (60 %) carry their episode (one to three events each)
and their window, as units send them. Each way writes its own device ids so nothing collides. Rounds alternate the
ways; medians are reported, with ratios to the baseline (the service must keep
at least half of the baseline's rate). Run:
``.venv/bin/python -m tests.bench.bench_ingest [--quick]``.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cloud.ingest import event_row, store_events
from cloud.store import Store, open_store
from models.wire import ShelfEvent
from tests.cloud import traffic
from tests.cloud.support import register_fleet
from tests.support.mosquitto import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "device_id", "seq", "wall_time", "mono_time", "received_at", "store_id", "bay_id", "slot",
    "sku", "kind", "label", "confidence", "units", "grams", "stock_units", "dwell_s", "episode",
    "model_version", "decided_by", "historical", "features",
]  # fmt: skip


@dataclass
class Figure:
    """One measured way on one database."""

    db: str
    way: str
    events: int
    seconds: list[float]

    @property
    def rate(self) -> float:
        """Median events per second over the rounds."""
        return self.events / statistics.median(self.seconds)


def make_batches(n: int, batch: int, prefix: str, seed: int) -> list[list[ShelfEvent]]:
    """``n`` events of devices named with ``prefix``, cut into batches per device."""
    per_device: dict[str, list[ShelfEvent]] = {}
    units = max(1, n // (2 * batch))  # two full batches per unit
    gen = traffic.events(  # a busy bay's pace: a unit's two batches span two hours
        n, seed=seed, device_prefix=prefix, stores=1, bays=units, windows=True, episodes=True,
        span=timedelta(hours=2),
    )  # fmt: skip
    for ev in gen:
        per_device.setdefault(ev.device_id, []).append(ev)
    out = []
    for evs in per_device.values():
        out += [evs[i : i + batch] for i in range(0, len(evs), batch)]
    return out


def baseline(store: Store, batches: list[list[ShelfEvent]]) -> float:
    """Seconds to executemany the rows of ``batches``, one commit per batch."""
    from datetime import UTC, datetime

    sqlite = store.dialect == "sqlite"
    now = datetime.now(UTC).replace(tzinfo=None)
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"
    wsql = f"INSERT INTO windows (device_id, seq, body) VALUES ({mark}, {mark}, {mark})"
    prepared = []
    for b in batches:
        rows = []
        for ev in b:
            r = event_row(ev, now)
            r["wall_time"] = r["wall_time"].replace(tzinfo=None)
            r["features"] = json.dumps(r["features"])
            if sqlite:
                r["wall_time"] = r["wall_time"].isoformat(" ")
                r["received_at"] = now.isoformat(" ")
            rows.append(tuple(r[c] for c in COLUMNS))
        wins = [
            (ev.device_id, ev.seq, json.dumps(ev.window.model_dump(mode="json")))
            for ev in b
            if ev.window is not None
        ]
        prepared.append((rows, wins))
    raw = store.engine.raw_connection()
    try:
        t0 = time.perf_counter()
        for rows, wins in prepared:
            cur = raw.cursor()
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, rows)
            if wins:
                cur.executemany(wsql, wins)
            raw.commit() if not sqlite else cur.execute("COMMIT")
            cur.close()
        return time.perf_counter() - t0
    finally:
        raw.close()


def service(store: Store, batches: list[list[ShelfEvent]]) -> float:
    """Seconds for :func:`store_events` over ``batches``."""
    t0 = time.perf_counter()
    for b in batches:
        store_events(store, b)
    return time.perf_counter() - t0


@contextmanager
def server(url: str, workers: int = 1) -> Iterator[int]:
    """``shelfsense cloud serve`` in a subprocess on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "SHELFSENSE_CLOUD_RATE_PER_S": "0",
        "SHELFSENSE_CLOUD_MAX_PAST_DAYS": "3650",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "shelfsense", "cloud", "serve", "--database-url", url,
           "--port", str(port), "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc, timeout=60)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def http_post(port: int, token: str, batches: list[list[ShelfEvent]], clients: int = 2) -> float:
    """Seconds to post ``batches`` as gzip JSON from ``clients`` threads (bodies made beforehand)."""
    bodies = [
        gzip.compress(
            json.dumps(
                {"device_id": b[0].device_id, "events": [e.model_dump(mode="json") for e in b]}
            ).encode(),
            compresslevel=1,
        )
        for b in batches
    ]
    tokens: dict[str, str] = {}
    for b in batches:
        tokens.setdefault(b[0].device_id, token)
    lock = threading.Lock()
    todo = list(zip(batches, bodies, strict=True))
    errors: list[str] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not todo:
                    break
                b, body = todo.pop(0)
            conn.request(
                "POST",
                "/v1/ingest/events",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    "Authorization": f"Bearer {UNIT_TOKENS[b[0].device_id]}",
                },
            )
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                errors.append(f"{resp.status} {data[:200]!r}")
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} posts failed, first: {errors[0]}")
    return time.perf_counter() - t0


UNIT_TOKENS: dict[str, str] = {}
HTTP_WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # uvicorn worker processes
HTTP_CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))  # posting threads


def register_units(store: Store, units: dict[str, tuple[str, str]]) -> None:
    """Register each ``device: (store, bay)`` with a unit key (HTTP ingest checks both)."""
    UNIT_TOKENS.update(register_fleet(store, units))


def bench_db(db: str, url: str, n: int, batch: int, rounds: int) -> list[Figure]:
    """The three ways on one database, ``rounds`` times each, interleaved."""
    store = open_store(url, pool_size=4)
    figs = {w: Figure(db, w, n, []) for w in ("executemany", "store_events", "HTTP")}
    plans = {
        (w, r): make_batches(n, batch, f"{w[:2]}{r}-", seed=r) for w in figs for r in range(rounds)
    }
    register_units(
        store,
        {
            b[0].device_id: (b[0].store, b[0].bay)
            for (w, _), bs in plans.items()
            if w == "HTTP"
            for b in bs
        },
    )
    with server(url, workers=HTTP_WORKERS) as port:
        for r in range(rounds):
            figs["executemany"].seconds.append(baseline(store, plans[("executemany", r)]))
            figs["store_events"].seconds.append(service(store, plans[("store_events", r)]))
            figs["HTTP"].seconds.append(http_post(port, "", plans[("HTTP", r)], HTTP_CLIENTS))
    with store.engine.connect() as conn:
        from sqlalchemy import func, select

        from cloud.store.tables import events, windows

        stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
        carried = conn.execute(select(func.count()).select_from(windows)).scalar_one()
    store.dispose()
    expected = 3 * rounds * n
    sent = sum(ev.window is not None for bs in plans.values() for b in bs for ev in b)
    if (stored, carried) != (expected, sent):
        raise RuntimeError(
            f"{db}: {stored} events and {carried} windows stored, expected {expected} and {sent}"
        )
    return list(figs.values())


def table(figs: list[Figure]) -> str:
    """The results as a markdown table."""
    lines = [
        "| database | way | events | median s | events/s | ratio to executemany |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    base = {f.db: f.rate for f in figs if f.way == "executemany"}
    for f in figs:
        lines.append(
            f"| {f.db} | {f.way} | {f.events} | {statistics.median(f.seconds):.3f} | "
            f"{f.rate:,.0f} | {f.rate / base[f.db]:.2f} |"
        )
    return "\n".join(lines)


def run(quick: bool, *, pg: bool = True, sizes: tuple[int, int, int] | None = None) -> list[Figure]:
    """Run the benchmark; returns the figures (also printed).

    ``sizes`` (events, batch, rounds) overrides the sizes of the mode.
    """
    n, batch, rounds = sizes or ((3_000, 500, 3) if quick else (40_000, 500, 3))
    figs: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        figs += bench_db("SQLite", f"sqlite:///{tmp}/bench.db", n, batch, rounds)
    if pg:
        from tests.support.postgres import pg_schema

        try:
            with pg_schema() as url:
                figs += bench_db("PostgreSQL", url, n, batch, rounds)
        except BaseException as err:  # pytest.skip inside pg_schema when no server
            if type(err).__name__ != "Skipped":
                raise
            print(f"PostgreSQL skipped: {err}")
    print(table(figs))
    return figs


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = p.parse_args(argv)
    run(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
