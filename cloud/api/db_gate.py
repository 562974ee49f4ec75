"""Database slots for API requests: waiting happens on the event loop, never on worker threads.

Sync dependencies (the key lookup, ``get_conn``) and sync routes run on AnyIO's
worker threads (40). Without a gate, more requests than pool connections park
every thread in the pool's checkout while the requests holding a connection
wait for a thread to run their route or return it: the process stalls until
the pool times out. Here each request that may touch the database first takes
a slot, on the event loop, before any of its thread-borne work starts, and
gives it back after its answer is sent and its connection returned:

* reads (``GET``/``HEAD``/``OPTIONS``) take a slot of the *read gate*, as many
  slots as the read pool has connections (size plus overflow), so an admitted
  read always finds one;
* other requests outside ingest (operator actions, units' health and reports,
  sales, console forms) take a slot of the *write gate*, as many as the write
  connections ingest leaves free. A pile of writes waiting on a busy database
  then holds at most that many threads, never all of them, and reads go on.
  Writes use the read pool only for short lookups (the caller's key, the console
  session) that never wait for a thread while holding a connection, so they
  cannot make an admitted read wait long for one.

Each gate is an :class:`cloud.admission.Admission`: a bounded queue (``read_queue``)
and a bounded wait (``read_max_wait_s``); past either, 503 ``overloaded`` with a
``Retry-After`` computed from the queue and the measured time per request.
Ingest (its own admission), TUF files, static assets and the API docs touch no
database connection and pass straight through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloud.admission import Admission, ASGIApp, Receive, Scope, Send, refuse

Gate = Literal["read", "write"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INITIAL_REQUEST_S = 0.05  # time per request assumed until one is measured
FREE_PREFIXES = ("/v1/tuf/", "/console/static/", "/static/")
FREE_PATHS = frozenset({"/openapi.json", "/docs"})


def gate_of(method: str, path: str, *, ingest_paths: frozenset[str]) -> Gate | None:
    """Which gate a request passes: ``read``, ``write``, or ``None`` when it needs no database.

    Anything not known to be free of the database is gated, so a new route is
    covered without being listed.
    """
    if path in FREE_PATHS or path.startswith(FREE_PREFIXES):
        return None
    if method in READ_METHODS:
        return "read"
    if method == "POST" and path in ingest_paths:
        return None  # ingest has admission control of its own (cloud.admission)
    return "write"


def write_slots(write_connections: int, ingest_slots: int, ingest_processes: int) -> int:
    """Write connections of the API process that ingest leaves to other writes (at least 1).

    With ingest processes, batches are stored over those processes' own
    connections and the whole write pool serves the other writes.
    """
    if ingest_processes:
        return max(1, write_connections)
    return max(1, write_connections - ingest_slots)


@dataclass
class DbGates:
    """The two gates of one process (call only from its event loop)."""

    read: Admission
    write: Admission

    @classmethod
    def sized(cls, read_slots: int, write_slots: int, queue: int, max_wait_s: float) -> DbGates:
        """Gates with ``read_slots`` and ``write_slots``, each with ``queue`` places."""
        return cls(
            read=Admission(read_slots, queue, max_wait_s, initial_batch_s=INITIAL_REQUEST_S),
            write=Admission(write_slots, queue, max_wait_s, initial_batch_s=INITIAL_REQUEST_S),
        )


class DbGateMiddleware:
    """Take a read or write slot before the request reaches the app; give it back after."""

    def __init__(self, app: ASGIApp, *, gates: DbGates, ingest_paths: frozenset[str]) -> None:
        self.app = app
        self.gates = gates
        self.ingest_paths = ingest_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        which = (
            gate_of(scope["method"], scope["path"], ingest_paths=self.ingest_paths)
            if scope["type"] == "http"
            else None
        )
        if which is None:
            await self.app(scope, receive, send)
            return
        gate = self.gates.read if which == "read" else self.gates.write
        refused = await gate.enter()
        if refused is not None:
            # a read has no body to leave unread: its connection may stay open
            what = "reads are" if which == "read" else "writes are"
            await refuse(send, refused, what=what, close=which != "read")
            return
        t0 = gate.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            gate.leave(gate.clock() - t0)
