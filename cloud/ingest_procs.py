"""Ingest in processes of its own, so reads keep the API process's event loop and interpreter lock.

With ``ingest_processes`` set (``cloud serve --ingest-processes N``) the API
process authenticates and admits a batch, then hands its body, still as sent, to
one of N processes that decode, parse, check and store it and send back the ack.
Reads stay in the API process and never wait for the interpreter lock while a
batch is parsed. The ingest processes run at a lower CPU priority
(``ingest_nice``): under a storm ingest slows before reads do. Each ends with the
server (it watches its parent and exits once that is gone) and ignores Ctrl-C,
which is the server's to handle. A process that dies mid-batch is replaced and
that batch answered 503: it was stored whole or not at all, so sending it again
is acked as stored or as duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from cloud.checks import TimeBounds
from cloud.errors import StoreError
from cloud.heap import settle_for_serving
from cloud.settings import CloudSettings
from cloud.store import Store, open_store
from models.wire import BatchAck

log = logging.getLogger(__name__)
WATCH_PARENT_S = 0.5  # how often an ingest process checks that its server still runs


@dataclass(frozen=True)
class IngestContext:
    """What storing a batch needs: the store and the limits on what is accepted."""

    store: Store
    bounds: TimeBounds
    max_decoded_bytes: int


_context: IngestContext | None = None  # one per ingest process, made by ``_start``
_gathering: Any = None  # the barrier every process of a new set meets at in ``_ready``


def _watch_parent(parent: int) -> None:
    stop = threading.Event()
    while os.getppid() == parent:
        stop.wait(WATCH_PARENT_S)
    os._exit(0)  # the server is gone: nobody is left to answer


def _start(settings_json: str, nice: int, parent: int, gathering: Any) -> None:
    """Set up one ingest process: lower priority, end with the parent, open the store."""
    global _context, _gathering
    _gathering = gathering
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    settings = CloudSettings.model_validate_json(settings_json)
    _context = IngestContext(
        store=open_store(settings.database_url, pool_size=1, run_migrations=False),
        bounds=TimeBounds.of(settings.max_future_s, settings.max_past_days),
        max_decoded_bytes=settings.max_decoded_bytes,
    )
    settle_for_serving()


def _ready() -> int:
    """This process's pid once every process of its set has started (so each gets one call)."""
    if _gathering is not None:
        _gathering.wait(timeout=120)
    return os.getpid()


def _store(device_id: str | None, raw: bytes, gzipped: bool) -> BatchAck:
    from cloud.api.routes.ingest import ingest_body

    assert _context is not None, "ingest process not started"
    return ingest_body(_context, device_id, raw, gzipped=gzipped)


class IngestPool:
    """N ingest processes of one API process; start, use and stop it from that process's loop."""

    def __init__(self, settings: CloudSettings, processes: int, *, nice: int = 0) -> None:
        self.settings = settings
        self.processes = processes
        self.nice = nice
        self.replaced = 0  # processes that died and were replaced since start
        self._pool: ProcessPoolExecutor | None = None
        self._mp = multiprocessing.get_context("spawn")

    def _new_pool(self, gathering: Any = None) -> ProcessPoolExecutor:
        # spawn: a clean interpreter, no copy of the server's threads, locks or sockets
        return ProcessPoolExecutor(
            self.processes,
            mp_context=self._mp,
            initializer=_start,
            initargs=(self.settings.model_dump_json(), self.nice, os.getpid(), gathering),
        )

    def start(self) -> list[int]:
        """Start every process and wait until each has its store open; their pids."""
        self._pool = self._new_pool(self._mp.Barrier(self.processes))
        futures = [self._pool.submit(_ready) for _ in range(self.processes)]
        return sorted(f.result(timeout=150) for f in futures)

    def pids(self) -> list[int]:
        """The ingest processes alive now."""
        procs = getattr(self._pool, "_processes", None) or {}
        return sorted(p.pid for p in procs.values() if p.is_alive() and p.pid is not None)

    def stop(self) -> None:
        """Let the batches in hand finish, then end the processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            self.replaced += 1
            log.warning("an ingest process ended unexpectedly; starting a new set of %d",
                        self.processes)  # fmt: skip
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    async def store(self, device_id: str | None, raw: bytes, *, gzipped: bool) -> BatchAck:
        """Decode, parse, check and store one batch in an ingest process; its ack."""
        if self._pool is None:
            raise StoreError("ingest processes are not running")
        pool = self._pool
        try:
            fut: Future[BatchAck] = pool.submit(_store, device_id, raw, gzipped)
        except BrokenProcessPool:  # nothing was handed over yet: try once on a new set
            self._replace(pool)
            pool = self._pool
            fut = pool.submit(_store, device_id, raw, gzipped)
        try:
            return await asyncio.wrap_future(fut)
        except BrokenProcessPool as err:
            self._replace(pool)
            raise StoreError("the ingest process ended mid-batch; send the batch again") from err
