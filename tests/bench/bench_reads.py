"""Read latency of the backend API with many events stored: stock, interest, the event feed.

For SQLite and PostgreSQL: load ``N`` events (full: 1,000,000; ``--quick``:
20,000) with bulk ``executemany`` (not what is measured), rebuild the current
stock from them, start ``shelfsense cloud serve`` (two worker processes, as a
small deployment would), then let 20 concurrent clients (threads with
keep-alive connections, each sending its next request as soon as the last
answered) call one endpoint at a time for a fixed time:

* ``GET /v1/stock?store=…`` (every slot of one store, ~80 rows),
* ``GET /v1/interest?store=…&sku=…`` (the last 24 h, per hour),
* ``GET /v1/events?store=…&limit=100`` following ``next_cursor`` page by page,
* ``GET /v1/health`` as the baseline: the floor of a request through the same
  server, clients and machine, with no key check and no query.

Prints p50 / p99 per endpoint and its p50 ratio to the baseline. Run:
``.venv/bin/python -m tests.bench.bench_reads [--quick]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import text

from cloud import interest_rollup
from cloud.ingest import EVENT_COLUMNS, driver_params, rebuild_current_stock
from cloud.keys import Role, create_key
from cloud.store import Store, open_store
from tests.bench.bench_ingest import server
from tests.cloud import traffic

STORES, BAYS, SLOTS, SKUS = 20, 10, 8, 400
CLIENTS = 20
POLL_INTERVAL = 0.1
LOADS = {
    f"20 clients polling every {POLL_INTERVAL * 1000:.0f} ms": POLL_INTERVAL,
    "20 clients back to back": 0.0,
}


@dataclass
class Latency:
    """Latencies of one endpoint on one database under one load."""

    db: str
    load: str
    endpoint: str
    seconds: list[float] = field(default_factory=list)
    errors: int = 0

    def pct(self, q: float) -> float:
        """The q-th percentile in milliseconds."""
        xs = sorted(self.seconds)
        return 1000 * xs[min(len(xs) - 1, int(q / 100 * len(xs)))]


def load(store: Store, n: int, end: datetime, *, stores: int = STORES, bays: int = BAYS) -> None:
    """Bulk-load ``n`` events over ``stores`` × ``bays`` units (one transaction per 20,000
    rows), then the current stock and interest per hour."""
    dialect = store.dialect
    mark = "?" if dialect == "sqlite" else "%s"
    sql = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join([mark] * len(EVENT_COLUMNS))})"
    chunk: list = []
    now = datetime.now(UTC)
    gen = traffic.events(
        n, stores=stores, bays=bays, slots=SLOTS, n_skus=SKUS, span=timedelta(days=20), end=end
    )

    def flush() -> None:
        with store.writer.begin() as conn:
            conn.exec_driver_sql(sql, driver_params(chunk, dialect, now))
        chunk.clear()

    for ev in gen:
        chunk.append(ev)
        if len(chunk) >= 20_000:
            flush()
    if chunk:
        flush()
    rebuild_current_stock(store)
    with store.writer.begin() as conn:
        interest_rollup.rebuild(conn)
    settle(store)


def settle(store: Store) -> None:
    """Bring a freshly bulk-loaded database to the state it reaches by itself in service:
    planner statistics (``ANALYZE``) and, on PostgreSQL, the visibility map ``VACUUM``
    sets, without which index-only scans read the table too (its autovacuum would do
    both within minutes, spending the bench's CPU while it measures)."""
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()


def hammer(
    port: int,
    token: str,
    next_path: Callable[[random.Random, dict], str],
    seconds: float,
    interval: float = 0.0,
    *,
    clients: int = CLIENTS,
    headers: dict[str, str] | None = None,
) -> tuple[list[float], int]:
    """``clients`` threads calling ``next_path()`` for ``seconds`` (``headers``: instead of
    the bearer ``token``, as a console session's cookie).

    ``interval`` 0: each client sends its next request as soon as the last is
    answered (saturation). Otherwise each client polls on a fixed schedule,
    one request every ``interval`` seconds (random phase; a late request goes
    at once), so latency is not just the queue the clients themselves build.
    """
    out: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        state: dict = {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        sent = headers or {"Authorization": f"Bearer {token}"}
        due = time.monotonic() + rng.uniform(0, interval)
        while time.monotonic() < stop:
            if interval > 0:
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                due += interval
            path = next_path(rng, state)
            t0 = time.perf_counter()
            conn.request("GET", path, headers=sent)
            resp = conn.getresponse()
            body = resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status != 200:
                with lock:
                    errors[0] += 1
            elif "cursor" in state:
                state["cursor"] = json.loads(body)["next_cursor"]
        conn.close()
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors[0]


def _store_name(rng: random.Random) -> str:
    return f"store-{rng.randrange(STORES):03d}"


def paths(end: datetime) -> dict[str, Callable[[random.Random, dict], str]]:
    """What each endpoint's clients ask for next."""
    since = (end - timedelta(hours=24)).isoformat()

    def health(_rng: random.Random, _s: dict) -> str:
        return "/v1/health"

    def stock(rng: random.Random, _s: dict) -> str:
        return "/v1/stock?" + urlencode({"store": _store_name(rng)})

    def interest(rng: random.Random, _s: dict) -> str:
        s = rng.randrange(STORES)
        b, slot = rng.randrange(BAYS), rng.randrange(SLOTS)
        sku = f"SKU-{(s * 7 + b * SLOTS + slot) % SKUS:05d}"
        q = {"store": f"store-{s:03d}", "sku": sku, "since": since, "until": end.isoformat()}
        return "/v1/interest?" + urlencode(q)

    def feed(rng: random.Random, s: dict) -> str:
        if "store" not in s or rng.random() < 0.05:  # now and then a new reader from the start
            s["store"], s["cursor"] = _store_name(rng), ""
        q = {"store": s["store"], "limit": 100}
        if s["cursor"]:
            q["cursor"] = s["cursor"]
        return "/v1/events?" + urlencode(q)

    return {"health (baseline)": health, "stock": stock, "interest": interest, "feed": feed}


@contextmanager
def loaded(db: str, url: str, n: int, end: datetime) -> Iterator[tuple[Store, float]]:
    """A store at ``url`` loaded with ``n`` events; yields it and the load time."""
    store = open_store(url, pool_size=4)
    t0 = time.perf_counter()
    load(store, n, end)
    try:
        yield store, time.perf_counter() - t0
    finally:
        store.dispose()


def bench_db(db: str, url: str, n: int, seconds: float) -> list[Latency]:
    """Every endpoint on one database."""
    end = datetime.now(UTC) - timedelta(minutes=1)
    out = []
    with loaded(db, url, n, end) as (store, load_s):
        print(f"{db}: loaded {n:,} events in {load_s:.1f} s")
        with store.writer.begin() as conn:
            token = create_key(conn, role=Role.BACKEND, name="bench").token
        with server(url, workers=2) as port:
            for load_name, interval in LOADS.items():
                for name, nxt in paths(end).items():
                    hammer(port, token, nxt, min(1.0, seconds / 4), interval)  # warm up
                    secs, errors = hammer(port, token, nxt, seconds, interval)
                    out.append(Latency(db, load_name, name, secs, errors))
    return out


def table(rows: list[Latency], n: int) -> str:
    """Markdown table of the results."""
    lines = [
        "| database | load | endpoint | events stored | requests | p50 ms | p99 ms "
        "| p50 / baseline | errors |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = {(r.db, r.load): r.pct(50) for r in rows if r.endpoint.startswith("health")}
    for r in rows:
        lines.append(
            f"| {r.db} | {r.load} | {r.endpoint} | {n:,} | {len(r.seconds)} | {r.pct(50):.1f} | "
            f"{r.pct(99):.1f} | {r.pct(50) / base[(r.db, r.load)]:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def run(quick: bool, *, pg: bool = True, sizes: tuple[int, float] | None = None) -> list[Latency]:
    """Run the benchmark; returns the latencies (the table is printed).

    ``sizes`` (events, seconds per endpoint and load) overrides the sizes of the mode.
    """
    n, seconds = sizes or ((20_000, 3.0) if quick else (1_000_000, 15.0))
    rows: list[Latency] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_db("SQLite", f"sqlite:///{tmp}/reads.db", n, seconds)
    if pg:
        from tests.support.postgres import pg_schema

        try:
            with pg_schema() as url:
                rows += bench_db("PostgreSQL", url, n, seconds)
        except BaseException as err:  # pytest.skip inside pg_schema when no server
            if type(err).__name__ != "Skipped":
                raise
            print(f"PostgreSQL skipped: {err}")
    print(table(rows, n))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="20,000 events, 3 s per endpoint")
    args = p.parse_args(argv)
    run(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
