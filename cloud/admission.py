"""Admission control for ingest: so many batches stored at once, a short queue, 503 beyond.

A fleet reconnecting after a shared outage sends far more than the database can
take. Each API process lets ``limit`` batches be stored at once (sized from its
write connections), queues a few more, and answers the rest at once with 503 and
a ``Retry-After`` computed from the queue, before reading their body: a unit
waits and comes back instead of timing out, and the server stores nothing for a
sender that has given up.

:func:`decide` is the pure decision (slots in use, queue, limits and the measured
time per batch in; run, queue or refuse out); :class:`Admission` is the per-process
asyncio bookkeeping around it; :class:`AdmissionMiddleware` applies it to ingest
requests, an ASGI layer that answers before the route (and its body) is reached.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from cloud.schemas import ErrorPublic

RUN: Literal["run"] = "run"
QUEUE: Literal["queue"] = "queue"
MAX_RETRY_AFTER_S = 60  # never tell a unit to stay away longer than this
SMOOTHING = 0.2  # weight of the newest batch in the running time per batch


@dataclass(frozen=True)
class Refuse:
    """Refused for now: come back after ``retry_after`` seconds."""

    retry_after: int


def drain_time(ahead: int, limit: int, per_batch_s: float) -> float:
    """Seconds until ``ahead`` batches, ``limit`` at a time, are stored."""
    return math.ceil(ahead / limit) * per_batch_s


def retry_after(ahead: int, limit: int, per_batch_s: float) -> int:
    """Whole seconds a refused sender should wait: until what is ahead of it has drained."""
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(drain_time(ahead, limit, per_batch_s))))


def decide(
    active: int,
    queued: int,
    *,
    limit: int,
    queue_max: int,
    per_batch_s: float,
    max_wait_s: float,
) -> Literal["run", "queue"] | Refuse:
    """What to do with a batch that arrives now.

    Run it when a slot is free and nobody waits; queue it when the queue has room
    and its expected wait (the batches ahead of it, ``limit`` at a time) stays under
    ``max_wait_s``; refuse it otherwise, with the time the work ahead needs.
    """
    if active < limit and queued == 0:
        return RUN
    ahead = active + queued
    expected = drain_time(ahead + 1 - limit, limit, per_batch_s)
    if queued < queue_max and expected <= max_wait_s:
        return QUEUE
    return Refuse(retry_after(ahead + 1, limit, per_batch_s))


@dataclass
class AdmissionCounters:
    """What operators and tests see of admission in this process since it started."""

    admitted: int = 0
    refused: int = 0  # refused on arrival: queue full or its wait too long
    expired: int = 0  # queued, then refused after waiting ``max_wait_s``


class Admission:
    """Slots and a queue for one process's ingest; call only from its event loop.

    ``enter`` admits (``None``) or refuses (:class:`Refuse`); every admitted
    caller calls ``leave`` with how long it took. A freed slot goes to the
    longest-waiting queued caller.
    """

    def __init__(
        self,
        limit: int,
        queue_max: int,
        max_wait_s: float,
        *,
        initial_batch_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.queue_max = queue_max
        self.max_wait_s = max_wait_s
        self.per_batch_s = initial_batch_s
        self.clock = clock
        self.active = 0
        self.counters = AdmissionCounters()
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    def _decide(self) -> Literal["run", "queue"] | Refuse:
        return decide(
            self.active,
            self.queued,
            limit=self.limit,
            queue_max=self.queue_max,
            per_batch_s=self.per_batch_s,
            max_wait_s=self.max_wait_s,
        )

    async def enter(self) -> Refuse | None:
        """Wait for a slot; ``None`` once admitted, :class:`Refuse` when there is none to wait for."""
        what = self._decide()
        if isinstance(what, Refuse):
            self.counters.refused += 1
            return what
        if what == RUN:
            self.active += 1
            self.counters.admitted += 1
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.max_wait_s)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            self._abandon(fut)
            raise
        if fut.done() and not fut.cancelled():  # a leaving caller handed its slot over
            self.counters.admitted += 1
            return None
        self._abandon(fut)
        self.counters.expired += 1
        return Refuse(retry_after(self.active + self.queued + 1, self.limit, self.per_batch_s))

    def _abandon(self, fut: asyncio.Future[None]) -> None:
        """Give up a place in the queue (or the slot it was just handed)."""
        if fut.done() and not fut.cancelled():
            self._release()
            return
        fut.cancel()
        if fut in self._waiters:
            self._waiters.remove(fut)

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on; ``active`` stays
                return
        self.active -= 1

    def leave(self, took_s: float) -> None:
        """An admitted caller is done after ``took_s`` seconds: its slot passes on."""
        self.per_batch_s += SMOOTHING * (max(0.0, took_s) - self.per_batch_s)
        self._release()


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def refuse(
    send: Send, refused: Refuse, *, what: str = "ingest is", close: bool = True
) -> None:
    """Answer 503 ``overloaded`` with ``Retry-After``.

    ``close``: the connection closes, as the body stays unread.
    """
    body = (
        ErrorPublic(
            code="overloaded",
            message=f"{what} at capacity; retry after {refused.retry_after} s",
            field=None,
        )
        .model_dump_json()
        .encode()
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(refused.retry_after).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    """Admit ``POST`` requests to ``paths`` through an :class:`Admission`, before the body is read."""

    def __init__(self, app: ASGIApp, *, admission: Admission, paths: frozenset[str]) -> None:
        self.app = app
        self.admission = admission
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        adm = self.admission
        refused = await adm.enter()
        if refused is not None:
            await refuse(send, refused)
            return
        t0 = adm.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            adm.leave(adm.clock() - t0)
