"""A fleet load generator: lightweight units and backend readers speaking the real HTTP protocol.

Each unit holds a backlog of events (as after an outage) and drains it the way the
real unit's sync does: gzip batches, a 15 s request timeout, full-jitter backoff
after a failure, ``Retry-After`` honoured on 503 and 429, events dropped only on
the cloud's ack. Backend readers meanwhile poll a store's stock, interest per SKU
and its event feed (following the cursor), one route every 100 ms each, from a process of their own;
:func:`read_quietly` times the same reads with no storm, the baseline. One asyncio
loop runs all the units, so a thousand units cost one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import multiprocessing
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

TIMEOUT_S = 15.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


@dataclass
class FleetReport:
    """What a fleet run saw, counted on the units' and readers' side."""

    drain_s: float = 0.0
    posts: int = 0
    acked_events: int = 0
    overloaded: int = 0  # 503 with Retry-After
    timeouts: int = 0
    errors_5xx: int = 0  # 5xx other than a 503 overloaded
    resent_events: int = 0  # events acked after an earlier try that may have delivered them
    transport_errors: dict[str, int] = field(default_factory=dict)  # by exception type
    reads: dict[str, list[float]] = field(default_factory=dict)  # seconds per read, by route
    read_errors: int = 0

    def read_ms(self, q: float, route: str | None = None) -> float:
        """The ``q`` quantile of read latency in ms, of one route or all (0 when nothing was read)."""
        return quantile_ms(self.reads, q, route)


def quantile_ms(reads: dict[str, list[float]], q: float, route: str | None = None) -> float:
    """The ``q`` quantile in milliseconds of the reads of ``route`` (all routes when None)."""
    xs = reads.get(route, []) if route else [x for v in reads.values() for x in v]
    if len(xs) < 2:
        return 1000 * (xs[0] if xs else 0.0)
    return 1000 * statistics.quantiles(xs, n=100, method="inclusive")[int(q * 100) - 1]


@dataclass(frozen=True)
class ReadPlan:
    """What backend readers ask for: a store's stock, its feed, and its interest per SKU.

    Reader ``i`` reads store ``stores[i % len(stores)]`` (all stores when there are
    none); its interest reads take that store's SKUs in turn, over
    ``[interest_since, interest_until)`` (the server's default, the last 24 h, if unset).
    """

    stores: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (store, its SKUs)
    interest_since: str | None = None
    interest_until: str | None = None

    def path(self, route: str, cursor: str, turn: int = 0, reader: int = 0) -> str:
        """The ``turn``-th request of ``route`` by ``reader`` (the feed after ``cursor``)."""
        store, skus = self.stores[reader % len(self.stores)] if self.stores else (None, ())
        q: dict[str, str] = {"store": store} if store else {}
        if route == "stock":
            return "/v1/stock?" + urlencode(q)
        if route == "interest":
            if skus:
                q["sku"] = skus[turn % len(skus)]
            if self.interest_since and self.interest_until:
                q |= {"since": self.interest_since, "until": self.interest_until}
            return "/v1/interest?" + urlencode(q)
        q |= {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        return "/v1/events?" + urlencode(q)


ROUTES = ("stock", "interest", "feed")


Batch = tuple[tuple[int, ...], bytes]
"""The seqs of a batch and its request body (gzip JSON), encoded once."""


def encode_batch(device_id: str, events: list[dict[str, Any]]) -> Batch:
    """The body a unit posts for ``events`` (gzip JSON), with their seqs."""
    body = json.dumps({"device_id": device_id, "events": events}).encode()
    return tuple(ev["seq"] for ev in events), gzip.compress(body, compresslevel=6)


@dataclass
class FleetUnit:
    """One unit's identity and backlog: its batches, oldest first, each encoded once
    (a large backlog kept as compressed bodies, about a twentieth of its events as
    dicts) and sent as it is until acked, as a unit's outbox does."""

    device_id: str
    token: str
    batches: list[Batch] = field(default_factory=list)

    @classmethod
    def of(cls, device_id: str, token: str, events: list[dict[str, Any]], batch: int) -> FleetUnit:
        """A unit whose backlog is ``events`` (wire events as JSON-ready dicts), ``batch``
        to a request."""
        chunks = (events[i : i + batch] for i in range(0, len(events), batch))
        return cls(device_id, token, [encode_batch(device_id, c) for c in chunks])

    @property
    def events(self) -> int:
        """Events in the backlog."""
        return sum(len(seqs) for seqs, _ in self.batches)


def full_jitter(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row (AWS full jitter)."""
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


async def drain_unit(
    client: httpx.AsyncClient, unit: FleetUnit, report: FleetReport, seed: int
) -> None:
    """Post the unit's batches, in order, until every event is acked."""
    rng = random.Random(seed)
    queue = list(unit.batches)
    failures = 0
    sent_before: set[int] = set()
    headers = {
        "Authorization": f"Bearer {unit.token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    while queue:
        seqs, body = set(queue[0][0]), queue[0][1]
        report.posts += 1
        try:
            resp = await client.post("/v1/ingest/events", content=body, headers=headers)
        except httpx.TimeoutException:
            report.timeouts += 1
            sent_before |= seqs
            failures += 1
            await asyncio.sleep(full_jitter(failures, rng))
            continue
        except httpx.TransportError as err:
            name = type(err).__name__
            report.transport_errors[name] = report.transport_errors.get(name, 0) + 1
            sent_before |= seqs
            failures += 1
            await asyncio.sleep(full_jitter(failures, rng))
            continue
        if resp.status_code == 200:
            ack = resp.json()
            done = set(ack["stored"]) | set(ack["duplicates"])
            # once per event: those an earlier try may have delivered (timeout, error, 5xx);
            # a 503 answered before the body was read delivered nothing
            report.resent_events += len(done & sent_before)
            report.acked_events += len(done)
            if not seqs <= done:  # batches are all or nothing: a partial ack is a bug
                raise RuntimeError(f"{unit.device_id}: {len(seqs - done)} events not acked")
            queue.pop(0)
            failures = 0
            continue
        if resp.status_code in (429, 503) and "retry-after" in resp.headers:
            report.overloaded += resp.status_code == 503
            await asyncio.sleep(float(resp.headers["retry-after"]) + rng.uniform(0, 1))
            continue
        if 400 <= resp.status_code < 500:  # refused for good: the load is wrong, not the server
            raise RuntimeError(f"{unit.device_id}: {resp.status_code} {resp.text[:300]}")
        if resp.status_code >= 500:
            report.errors_5xx += 1
        sent_before |= seqs
        failures += 1
        await asyncio.sleep(full_jitter(failures, rng))


async def poll(
    client: httpx.AsyncClient,
    token: str,
    plan: ReadPlan,
    report: FleetReport,
    stop: asyncio.Event,
    reader: int = 0,
) -> None:
    """Read stock, interest and the feed in turn, one every 100 ms, until ``stop``; time each."""
    headers = {"Authorization": f"Bearer {token}"}
    cursor = ""
    turn = reader
    while not stop.is_set():
        route = ROUTES[turn % len(ROUTES)]
        t0 = time.perf_counter()
        try:
            resp = await client.get(plan.path(route, cursor, turn, reader), headers=headers)
            ok = resp.status_code == 200
            if ok and route == "feed":
                cursor = resp.json()["next_cursor"]
        except httpx.HTTPError:
            ok = False
        report.reads.setdefault(route, []).append(time.perf_counter() - t0)
        report.read_errors += not ok
        turn += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def read_until(
    url: str, token: str, readers: int, stop: Any, plan: ReadPlan = ReadPlan()
) -> tuple[dict[str, list[float]], int]:
    """``readers`` clients polling until ``stop`` (anything with ``is_set()``) is set."""
    report = FleetReport()
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(TIMEOUT_S)) as client:
        polling = [
            asyncio.create_task(poll(client, token, plan, report, done, reader=i))
            for i in range(readers)
        ]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        done.set()
        await asyncio.gather(*polling)
    return report.reads, report.read_errors


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def is_set(self) -> bool:
        return time.monotonic() >= self.end


def read_quietly(
    url: str, token: str, readers: int, seconds: float, plan: ReadPlan = ReadPlan()
) -> tuple[dict[str, list[float]], int]:
    """The same reads for ``seconds`` with nothing else going on: the baseline of a storm."""
    return asyncio.run(read_until(url, token, readers, _Deadline(seconds), plan))


def _reader_process(
    url: str, token: str, readers: int, stop: Any, out: Any, plan: ReadPlan
) -> None:
    out.put(asyncio.run(read_until(url, token, readers, stop, plan)))


async def drain_all(url: str, units: list[FleetUnit], *, seed: int) -> FleetReport:
    """Drain every unit's backlog at once; the report (reads not included)."""
    report = FleetReport()
    limits = httpx.Limits(max_connections=len(units) + 10)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=httpx.Timeout(TIMEOUT_S)
    ) as client:
        t0 = time.perf_counter()
        total = sum(u.events for u in units)
        shown = asyncio.create_task(_show_progress(report, total, t0))
        try:
            await asyncio.gather(
                *(drain_unit(client, u, report, seed + i) for i, u in enumerate(units))
            )
        finally:
            shown.cancel()
        report.drain_s = time.perf_counter() - t0
    return report


async def _show_progress(report: FleetReport, total: int, t0: float) -> None:
    """A line on stderr every :data:`PROGRESS_S` seconds: events acked of all, posts, 503s."""
    while True:
        await asyncio.sleep(PROGRESS_S)
        print(
            f"  {time.perf_counter() - t0:6.0f} s: {report.acked_events:,} of {total:,} events "
            f"acked, {report.posts:,} posts, {report.overloaded:,} answered 503",
            file=sys.stderr,
            flush=True,
        )


PROGRESS_S = 15.0


def run_fleet(
    url: str,
    units: list[FleetUnit],
    *,
    reader_token: str,
    readers: int,
    seed: int = 0,
    plan: ReadPlan = ReadPlan(),
) -> FleetReport:
    """Drain every backlog at once while ``readers`` poll from a process of their own.

    The readers get their own process so what they time is the server, not this
    process busy encoding batches.
    """
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_reader_process, args=(url, reader_token, readers, stop, out, plan))
    proc.start()
    try:
        report = asyncio.run(drain_all(url, units, seed=seed))
    finally:
        stop.set()
    report.reads, report.read_errors = out.get(timeout=60)
    proc.join(timeout=30)
    return report
