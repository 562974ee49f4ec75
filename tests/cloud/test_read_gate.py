"""Many concurrent reads with a tiny read pool: all answered, or refused at once with 503.

Sync dependencies and routes run on a bounded set of worker threads; without a
gate on the event loop, more requests than pool connections park every thread
waiting for a connection while the requests holding one wait for a thread.
These tests run the real app under uvicorn on SQLite and PostgreSQL with
``db_pool_size=2`` and fire 200 reads at once: stock, the feed, the fleet, and
keys the process has never looked up. The wait-bound tests hold the pool's (or
the write pool's) connections from outside so the app's slots stay taken for
as long as the test wants, with no sleeps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.admission import Admission
from cloud.api.db_gate import gate_of, write_slots
from cloud.keys import Role
from cloud.settings import CloudSettings, build_settings
from tests.cloud.support import Live, batch, make_key, register_unit, serve
from tests.support.waiting import wait_until

BURST = 200
CLIENT_TIMEOUT_S = 90.0  # generous: a stall shows as a timeout or a 500 after pool_timeout


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloud.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


INGEST = frozenset({"/v1/ingest/events"})


def test_every_request_that_may_touch_the_database_is_gated() -> None:
    assert gate_of("GET", "/v1/stock", ingest_paths=INGEST) == "read"
    assert gate_of("HEAD", "/v1/events", ingest_paths=INGEST) == "read"
    assert gate_of("GET", "/metrics", ingest_paths=INGEST) == "read"
    assert gate_of("GET", "/console/fleet", ingest_paths=INGEST) == "read"
    assert gate_of("PUT", "/v1/devices/u/health", ingest_paths=INGEST) == "write"
    assert gate_of("POST", "/console/signin", ingest_paths=INGEST) == "write"
    assert gate_of("GET", "/v1/ingest/events", ingest_paths=INGEST) == "read"
    assert gate_of("POST", "/v1/ingest/events", ingest_paths=INGEST) is None
    assert gate_of("GET", "/v1/tuf/metadata/timestamp.json", ingest_paths=INGEST) is None
    assert gate_of("GET", "/console/static/console.css", ingest_paths=INGEST) is None
    assert gate_of("GET", "/openapi.json", ingest_paths=INGEST) is None


@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), path=st.text())
def test_a_path_not_known_to_be_free_is_gated(method: str, path: str) -> None:
    free = path in ("/openapi.json", "/docs") or path.startswith(
        ("/v1/tuf/", "/console/static/", "/static/")
    )
    ingest = method == "POST" and path in INGEST
    assert (gate_of(method, path, ingest_paths=INGEST) is None) == (free or ingest)


def test_writes_get_the_write_connections_ingest_leaves() -> None:
    assert write_slots(5, 4, 0) == 1
    assert write_slots(5, 5, 0) == 1  # never none: a write waits, it is not shut out
    assert write_slots(5, 2, 2) == 5  # ingest stores over its processes' own connections


def gate_settings(url: str, **kw: Any) -> CloudSettings:
    base: dict[str, Any] = {
        "database_url": url,
        "rate_per_s": 0,
        "db_pool_size": 2,
        "db_write_pool_size": 2,
        "read_max_wait_s": 60,  # the bound on the wait has tests of its own
    }
    return build_settings(**{**base, **kw})


Request = tuple[str, str, str, dict[str, Any] | None]  # method, path, token, json body
Answer = tuple[int, httpx.Headers, bytes]


def fire(
    url: str, requests: list[Request], answers: list[Answer], order: list[int] | None = None
) -> None:
    """Send every request at once (one connection each); append each answer as it comes
    (and to ``order`` the index of the request it answers)."""

    async def one(client: httpx.AsyncClient, i: int, req: Request) -> None:
        method, path, token, body = req
        headers = {"Authorization": f"Bearer {token}"}
        resp = await client.request(method, path, headers=headers, json=body)
        answers.append((resp.status_code, resp.headers, resp.content))
        if order is not None:
            order.append(i)

    async def all_at_once() -> None:
        limits = httpx.Limits(max_connections=len(requests) + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits
        ) as client:
            await asyncio.gather(*(one(client, i, r) for i, r in enumerate(requests)))

    asyncio.run(all_at_once())


@contextmanager
def firing(url: str, requests: list[Request]) -> Iterator[list[Answer]]:
    """:func:`fire` in a thread; the block sees answers arrive, its end waits for all."""
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fire(url, requests, answers)
        except BaseException as err:  # surfaced below, in the test's thread
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        thread.join(timeout=CLIENT_TIMEOUT_S + 30)
    assert not errors, f"a request failed: {errors[0]!r}"
    assert not thread.is_alive(), "requests still unanswered"


def all_answered(
    url: str, requests: list[Request], answers: list[Answer], order: list[int]
) -> list[int]:
    """Every request answered 200, once those refused as overloaded are sent again after
    their ``Retry-After``; returns the first answers' statuses.

    A loaded machine measures a longer time per request, and the gate then refuses at
    once a request whose expected wait would pass ``read_max_wait_s``: that honest 503
    (``overloaded``, with ``Retry-After``) is the one other answer allowed, and the
    request must then succeed. A stall, a pool timeout (500) or any other answer fails.
    """
    statuses = [status for status, _, _ in answers]
    assert len(statuses) == len(requests)
    assert set(statuses) <= {200, 503}, {s: statuses.count(s) for s in set(statuses)}
    refused = [i for i, (status, _, _) in enumerate(answers) if status == 503]
    for i in refused:
        _, headers, body = answers[i]
        assert b'"overloaded"' in body and float(headers["retry-after"]) > 0, body
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
        for i in refused:
            method, path, token, payload = requests[order[i]]
            wait = float(answers[i][1]["retry-after"])
            for _ in range(20):
                time.sleep(min(wait, 5.0))  # the wait the server asked for (bounded)
                r = client.request(
                    method, path, headers={"Authorization": f"Bearer {token}"}, json=payload
                )
                if r.status_code != 503:
                    break
                wait = float(r.headers["retry-after"])
            assert r.status_code == 200, (path, r.status_code, r.text)
    return statuses


def mixed_reads(live: Live) -> list[Request]:
    """Stock, the feed and the fleet with cached keys; stock with keys never looked up yet."""
    unit = register_unit(live.store, "unit-1")
    with live.client(unit) as c:
        r = c.post("/v1/ingest/events", json=batch("unit-1", range(1, 21), stock_units=5))
        assert r.status_code == 200, r.text
    backend = make_key(live.store, Role.BACKEND)
    operator = make_key(live.store, Role.OPERATOR)
    fresh = [make_key(live.store, Role.BACKEND) for _ in range(BURST // 4)]
    with live.client(backend) as c:  # these two keys are in the key cache from now on
        assert c.get("/v1/stock").status_code == 200
    with live.client(operator) as c:
        assert c.get("/v1/devices").status_code == 200
    reqs: list[Request] = []
    for i in range(BURST // 4):
        reqs.append(("GET", "/v1/stock", backend, None))
        reqs.append(("GET", "/v1/events?limit=10", backend, None))
        reqs.append(("GET", "/v1/devices", operator, None))
        reqs.append(("GET", "/v1/stock/skus", fresh[i], None))
    return reqs


def services_of(live: Live) -> Any:
    app: Any = live.server.config.app
    return app.state.services


def test_200_concurrent_reads_on_a_pool_of_2_are_all_answered(db_url: str) -> None:
    with serve(gate_settings(db_url)) as live:
        reqs = mixed_reads(live)
        answers: list[Answer] = []
        order: list[int] = []
        fire(live.url, reqs, answers, order)
        refused = all_answered(live.url, reqs, answers, order).count(503)
        gate: Admission = services_of(live).read_gate
        # a slot is given back just after the answer is sent (and the connection returned)
        wait_until(lambda: gate.active == 0 and gate.queued == 0)
        assert gate.counters.refused + gate.counters.expired == refused


@contextmanager
def held(engine: Any, n: int) -> Iterator[Callable[[], None]]:
    """Check ``n`` connections out of ``engine``'s pool; yields the function that returns them."""
    with ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(engine.connect())
        yield stack.close


@contextmanager
def slots_held(live: Live, gate: Admission) -> Iterator[Callable[[], None]]:
    """Take every slot of ``gate`` on the app's event loop, as requests in progress would.

    Yields the function that gives them back (called at the end if not before).
    """
    loop = live.server.servers[0].get_loop()
    taken = gate.limit
    for _ in range(taken):
        assert asyncio.run_coroutine_threadsafe(gate.enter(), loop).result(timeout=10) is None

    def release() -> None:
        nonlocal taken
        for _ in range(taken):
            loop.call_soon_threadsafe(gate.leave, 0.01)
        taken = 0

    try:
        yield release
    finally:
        release()


def refused_count(metrics: str, gate: str, reason: str) -> float:
    line = f'shelfsense_db_gate_refused_total{{gate="{gate}",reason="{reason}"}} '
    found = [ln for ln in metrics.splitlines() if ln.startswith(line)]
    assert found, f"no {line!r} in /metrics: {metrics[:300]!r}"
    return float(found[0].split()[-1])


def test_reads_past_the_queue_bound_get_503_with_retry_after_at_once(db_url: str) -> None:
    queue = 5
    with serve(gate_settings(db_url, read_queue=queue)) as live:
        reqs = mixed_reads(live)
        gate: Admission = services_of(live).read_gate
        operator = make_key(live.store, Role.OPERATOR)
        with slots_held(live, gate) as release, firing(live.url, reqs) as answers:
            # every slot is taken: five reads wait on the event loop, every other one is
            # refused without waiting
            refused = BURST - queue
            wait_until(lambda: len(answers) >= refused, timeout=60)
            assert gate.queued == queue
            assert [s for s, _, _ in answers] == [503] * refused
            release()
        assert len(answers) == BURST
        assert sorted(s for s, _, _ in answers[refused:]) == [200] * queue
        for _, headers, body in answers[:refused]:
            assert int(headers["retry-after"]) >= 1
            assert b'"overloaded"' in body
        with live.client(operator) as c:
            metrics = c.get("/metrics").text
        assert refused_count(metrics, "read", "on_arrival") == refused
        wait_until(lambda: gate.active == 0 and gate.queued == 0)


def test_writes_stuck_on_the_database_do_not_starve_reads(db_url: str) -> None:
    """Unit reports pile up behind a write pool held from outside; reads still all answer.

    Without a write gate the reports park every worker thread in the write pool's
    checkout, and reads only get a thread once those give up (500 after the pool
    timeout). With it, at most the gate's slots wait on the database and the rest
    wait on the event loop, unanswered, while every read is answered.
    """
    with serve(gate_settings(db_url)) as live:
        reads = mixed_reads(live)
        unit = register_unit(live.store, "unit-2")
        path = "/v1/devices/unit-2/health"
        writes: list[Request] = [("PUT", path, unit, {"at": 1e9 + i}) for i in range(BURST // 2)]
        gate: Admission = services_of(live).write_gate
        with held(live.store.writer, 2) as release, firing(live.url, writes) as write_answers:
            wait_until(lambda: gate.active + gate.queued == len(writes), timeout=60)
            read_answers: list[Answer] = []
            order: list[int] = []
            fire(live.url, reads, read_answers, order)
            all_answered(live.url, reads, read_answers, order)
            # only the writes in a slot can have given up on the held pool (its timeout)
            assert len(write_answers) <= gate.limit
            release()
        assert len(write_answers) == len(writes)
        failed = [s for s, _, _ in write_answers if s != 200]
        assert len(failed) <= gate.limit and set(failed) <= {500}, failed
