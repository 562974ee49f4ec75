"""A burst of concurrent reads on a small read pool: how long until every read is answered.

Starts the app under uvicorn in this process (SQLite file, and PostgreSQL when
reachable) with ``db_pool_size`` 2, stores a unit's events, then sends ``N``
reads at once (default 200, one connection each): a quarter each of
``/v1/stock``, ``/v1/events?limit=10``, ``/v1/devices`` and ``/v1/stock/skus``
with a key the process has never looked up. The baseline, in the same run and
on the same server, is the same reads sent two at a time (as many as the pool
has connections: nothing ever waits for one). Prints, per database, the time
until every read was answered, the answers by status and the slowest read; a
read not answered within the client timeout counts as ``timeout`` (a stall).
Run: ``.venv/bin/python -m tests.bench.bench_read_burst [--reads N] [--timeout S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import Live, batch, make_key, register_unit, serve

POOL = 2


@dataclass
class Burst:
    """One way of sending the reads, on one database."""

    db: str
    mode: str
    wall_s: float
    answers: Counter[str]
    slowest_s: float


def reads(live: Live, n: int) -> list[tuple[str, str]]:
    """``n`` (path, token) pairs: stock, the feed, the fleet, and keys never looked up."""
    unit = register_unit(live.store, "unit-1")
    with live.client(unit) as c:
        r = c.post("/v1/ingest/events", json=batch("unit-1", range(1, 21), stock_units=5))
        r.raise_for_status()
    backend = make_key(live.store, Role.BACKEND)
    operator = make_key(live.store, Role.OPERATOR)
    out: list[tuple[str, str]] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(("/v1/stock", backend))
        elif kind == 1:
            out.append(("/v1/events?limit=10", backend))
        elif kind == 2:
            out.append(("/v1/devices", operator))
        else:
            out.append(("/v1/stock/skus", make_key(live.store, Role.BACKEND)))
    return out


async def send(url: str, todo: list[tuple[str, str]], at_once: int, timeout: float) -> Burst:
    """Send ``todo`` with ``at_once`` in flight; the time until the last is answered."""
    answers: Counter[str] = Counter()
    slowest = 0.0
    sem = asyncio.Semaphore(at_once)
    limits = httpx.Limits(max_connections=at_once + 10, max_keepalive_connections=at_once)

    async def one(client: httpx.AsyncClient, path: str, token: str) -> None:
        nonlocal slowest
        async with sem:
            t0 = time.perf_counter()
            try:
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                answers[str(r.status_code)] += 1
            except httpx.TimeoutException:
                answers["timeout"] += 1
            slowest = max(slowest, time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one(client, p, t) for p, t in todo))
    return Burst("", "", time.perf_counter() - t0, answers, slowest)


def bench_db(db: str, url: str, n: int, timeout: float) -> list[Burst]:
    """The baseline and the burst on one database."""
    settings = build_settings(
        database_url=url, rate_per_s=0, db_pool_size=POOL, db_write_pool_size=POOL
    )
    out = []
    with serve(settings) as live:
        todo = reads(live, n)
        for mode, at_once in ((f"{POOL} at a time (baseline)", POOL), (f"{n} at once", n)):
            b = asyncio.run(send(live.url, todo, at_once, timeout))
            b.db, b.mode = db, mode
            out.append(b)
    return out


def table(rows: list[Burst], n: int) -> str:
    """Markdown table of the results."""
    lines = [
        f"| database | {n} reads sent | until all answered s | answers | slowest read s |",
        "| --- | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.answers.items()))
        lines.append(f"| {r.db} | {r.mode} | {r.wall_s:.2f} | {answers} | {r.slowest_s:.2f} |")
    return "\n".join(lines)


def run(n: int = 200, timeout: float = 60.0, *, pg: bool = True) -> list[Burst]:
    """Run the benchmark; returns the bursts (the table is printed)."""
    rows: list[Burst] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_db("SQLite", f"sqlite:///{tmp}/burst.db", n, timeout)
    if pg:
        from tests.support.postgres import pg_schema

        try:
            with pg_schema() as url:
                rows += bench_db("PostgreSQL", url, n, timeout)
        except BaseException as err:  # pytest.skip inside pg_schema when no server
            if type(err).__name__ != "Skipped":
                raise
            print(f"PostgreSQL skipped: {err}")
    print(f"db_pool_size={POOL}, client timeout {timeout:.0f} s")
    print(table(rows, n))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--reads", type=int, default=200, help="reads in the burst (default 200)")
    p.add_argument("--timeout", type=float, default=60.0, help="client timeout, seconds")
    p.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = p.parse_args(argv)
    run(args.reads, args.timeout, pg=not args.no_pg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
