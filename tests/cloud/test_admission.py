"""Admission control of ingest: the pure decision, the queue, and the real app under load.

The integration tests hold the database's write lock from outside (a SQLite
``BEGIN IMMEDIATE``, the PostgreSQL ingest advisory locks), so ingest requests
stay in their slots for as long as the test wants, with no sleeps.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.admission import QUEUE, RUN, Admission, Refuse, decide
from cloud.keys import Role
from cloud.settings import CloudSettings, build_settings
from tests.cloud.support import Live, batch, count_events, make_key, register_unit, serve
from tests.support.waiting import wait_until

LIMITS: dict[str, Any] = {"limit": 2, "queue_max": 1, "per_batch_s": 0.5, "max_wait_s": 5.0}


def test_decide_runs_queues_then_refuses() -> None:
    assert decide(0, 0, **LIMITS) == RUN
    assert decide(1, 0, **LIMITS) == RUN
    assert decide(2, 0, **LIMITS) == QUEUE
    refused = decide(2, 1, **LIMITS)
    assert isinstance(refused, Refuse)
    assert refused.retry_after == 1  # 4 batches, 2 at a time, 0.5 s each
    slow = decide(2, 0, **{**LIMITS, "per_batch_s": 6.0})  # its wait would pass max_wait_s
    assert isinstance(slow, Refuse) and slow.retry_after == 12


@given(
    active=st.integers(0, 50),
    queued=st.integers(0, 50),
    limit=st.integers(1, 20),
    queue_max=st.integers(0, 30),
    per_batch_s=st.floats(0, 100),
    max_wait_s=st.floats(0.01, 60),
)
def test_decide_bounds_slots_queue_and_retry(
    active: int, queued: int, limit: int, queue_max: int, per_batch_s: float, max_wait_s: float
) -> None:
    what = decide(
        active,
        queued,
        limit=limit,
        queue_max=queue_max,
        per_batch_s=per_batch_s,
        max_wait_s=max_wait_s,
    )
    if what == RUN:
        assert active < limit and queued == 0
    elif what == QUEUE:
        assert queued < queue_max
    else:
        assert isinstance(what, Refuse) and 1 <= what.retry_after <= 60


def test_a_freed_slot_goes_to_the_oldest_waiter_and_a_waiter_expires() -> None:
    async def scenario() -> None:
        adm = Admission(1, 2, max_wait_s=30)
        assert await adm.enter() is None
        first = asyncio.ensure_future(adm.enter())
        second = asyncio.ensure_future(adm.enter())
        while adm.queued < 2:
            await asyncio.sleep(0)
        assert isinstance(await adm.enter(), Refuse)  # queue full
        adm.leave(0.1)
        assert await first is None and adm.active == 1 and not second.done()
        adm.leave(0.1)
        assert await second is None
        adm.leave(0.1)
        assert adm.active == 0 and adm.queued == 0
        short = Admission(1, 1, max_wait_s=0.01, initial_batch_s=0.001)
        assert await short.enter() is None
        assert isinstance(await short.enter(), Refuse)  # waited its max, never got the slot
        assert short.counters.expired == 1 and short.queued == 0
        short.leave(0.1)
        assert short.active == 0

    asyncio.run(scenario())


@contextmanager
def writes_held(live: Live) -> Iterator[None]:
    """Hold the database's ingest write lock from another connection until the block ends."""
    url = live.settings.database_url
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    from sqlalchemy import text

    from cloud.ingest import FEED_LOCK_KEY

    with live.store.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": FEED_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": FEED_LOCK_KEY})
            conn.commit()


def post_without_body(live: Live, token: str) -> http.client.HTTPResponse:
    """POST an ingest request's headers announcing 100 kB of gzip, and never send the body."""
    port = int(live.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(
        b"POST /v1/ingest/events HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    resp = http.client.HTTPResponse(sock)
    resp.begin()  # answers although the body never comes: it was not read
    return resp


def admission_of(live: Live) -> Admission:
    """The admission bookkeeping of the running app."""
    app: Any = live.server.config.app
    adm: Admission = app.state.services.admission
    return adm


def admission_settings(url: str) -> CloudSettings:
    return build_settings(
        database_url=url,
        rate_per_s=0,
        db_pool_size=3,
        db_write_pool_size=3,
        ingest_concurrency=2,
        ingest_queue=1,
        ingest_max_wait_s=30,
    )


def check_shedding(live: Live) -> None:
    adm = admission_of(live)
    tokens = {d: register_unit(live.store, d) for d in ("u-1", "u-2", "u-3", "u-4")}
    backend = make_key(live.store, Role.BACKEND)
    answers: dict[str, int] = {}

    def post(device: str) -> None:
        with live.client(tokens[device]) as c:
            answers[device] = c.post(
                "/v1/ingest/events", json=batch(device, range(1, 6))
            ).status_code

    with writes_held(live):
        posters = [threading.Thread(target=post, args=(d,)) for d in ("u-1", "u-2", "u-3")]
        for t in posters:
            t.start()
        wait_until(lambda: adm.active == 2 and adm.queued == 1)
        resp = post_without_body(live, tokens["u-4"])
        assert resp.status == 503
        assert int(resp.getheader("Retry-After") or "0") >= 1
        assert b'"overloaded"' in resp.read()
        assert adm.counters.refused == 1
        with live.client(backend) as c:  # reads answer while every ingest slot waits on the db
            assert c.get("/v1/stock").status_code == 200
            assert c.get("/v1/events").status_code == 200
            assert c.get("/v1/health").status_code == 200
        assert adm.active == 2 and adm.queued == 1 and not answers
    for t in posters:
        t.join(timeout=60)
    assert answers == {"u-1": 200, "u-2": 200, "u-3": 200}
    with live.client(tokens["u-4"]) as c:  # after release the refused unit gets in
        assert c.post("/v1/ingest/events", json=batch("u-4", range(1, 6))).status_code == 200
        again = c.post("/v1/ingest/events", json=batch("u-4", range(1, 6))).json()
    assert again["duplicates"] == [1, 2, 3, 4, 5] and again["stored"] == []
    assert [count_events(live.store, d) for d in sorted(tokens)] == [5, 5, 5, 5]
    assert count_events(live.store) == 20
    assert adm.active == 0 and adm.queued == 0


def test_ingest_sheds_load_before_reading_and_reads_still_answer_sqlite(tmp_path) -> None:
    with serve(admission_settings(f"sqlite:///{tmp_path / 'c.db'}")) as live:
        check_shedding(live)


@pytest.mark.pg
def test_ingest_sheds_load_before_reading_and_reads_still_answer_pg(pg_url: str) -> None:
    with serve(admission_settings(pg_url)) as live:
        check_shedding(live)


def test_refused_answer_closes_the_connection(live: Live) -> None:
    adm = admission_of(live)
    adm.queue_max, adm.active = 0, adm.limit  # every slot taken, no queue
    try:
        resp = httpx.post(f"{live.url}/v1/ingest/events", content=b"{}")
    finally:
        adm.active = 0
    assert resp.status_code == 503 and resp.headers["connection"] == "close"
    assert resp.headers["retry-after"].isdigit()
