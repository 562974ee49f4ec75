"""The decision worker: inbox values into windows, windows decided, events committed.

Each pass takes the sensed values up to the inbox's horizon (in sim mode rounded down
to whole ``tick_s``, so the same simulated day is always cut the same way), feeds them
to the :class:`~edge.windows.Windower` in time order, decides the windows nothing more
can join (model or rules, :mod:`edge.workers.decide`), books their stock
(:class:`~edge.stock.StockBook`), turns them into event fields (:mod:`edge.events`) and
commits all of one pass in one transaction through ``emit`` (the agent's buffer).
Windows numbered up to ``skip_through`` are decided and booked but not emitted: after
a restart in sim mode the day is replayed up to what the buffer already holds.
A bundle installed while the agent runs is picked up (``watch``). While the camera is
down (or the unit has none), windows with nobody seen are decided by ``blind``
(weight only) rather than taken for sensor faults. A failing pass is logged and
counted; the worker goes on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.events import Origin, WindowDecision, window_events
from edge.health import Health
from edge.stock import StockBook
from edge.windows import Windower
from edge.workers.decide import BundleWatch, WindowDecider
from edge.workers.state import save_stock
from edge.workers.timeline import Inbox
from models.types import Presence
from models.window import EventWindow

log = logging.getLogger(__name__)

Emit = Callable[[Iterable[Mapping[str, Any]]], object]


class DecisionWorker:
    """Windows, decisions, stock and events of one bay."""

    def __init__(
        self,
        inbox: Inbox,
        windower: Windower,
        decider: WindowDecider,
        book: StockBook,
        origin: Origin,
        emit: Emit,
        *,
        health: Health,
        tick_s: float | None = None,
        poll_s: float = 0.05,
        skip_through: int = 0,
        blind: WindowDecider | None = None,
        watch: BundleWatch | None = None,
        stock_file: Path | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.inbox = inbox
        self.windower = windower
        self.decider = decider
        self.book = book
        self.origin = origin
        self.emit = emit
        self.health = health
        self.tick_s = tick_s
        self.poll_s = poll_s
        self.skip_through = skip_through
        self.blind = blind
        self.watch = watch
        self.stock_file = stock_file
        self.wall_clock = wall_clock
        self.now = 0.0 if tick_s else -math.inf
        self.windows = 0
        self.emitted = 0

    def _until(self) -> float | None:
        h = self.inbox.horizon()
        if h is None:
            return None
        if self.tick_s and math.isfinite(h):
            return math.floor(h / self.tick_s) * self.tick_s
        return h

    def _cuts(self, until: float) -> list[float]:
        """Where the windower is asked for ready windows: every tick in sim mode."""
        if not self.tick_s:
            return [until]
        last = until
        if math.isinf(until):  # the end: tick through what is left, then flush
            last = math.ceil(self.inbox.latest(self.now) / self.tick_s) * self.tick_s
        k0 = round(self.now / self.tick_s) + 1
        k1 = round(last / self.tick_s)
        cuts = [k * self.tick_s for k in range(k0, k1 + 1)]
        return [*cuts, until] if math.isinf(until) else cuts

    def _advance(self, cut: float) -> list[EventWindow]:
        w = self.windower
        ready = []
        for t, _, v in self.inbox.take(cut):
            ready += w.ready(t, occupied_since=self.inbox.occupied_since(t))
            if isinstance(v, Presence):
                w.add_presence(v)
            else:
                w.add_change(v)
        if math.isinf(cut):
            return ready + w.flush()
        return ready + w.ready(cut, occupied_since=self.inbox.occupied_since(cut))

    def step(self, *, final: bool = False) -> int:
        """One pass; returns how many events were committed. ``final`` flushes every window.

        In sim mode the windower is asked at every whole tick, so how often passes run
        never changes how a day is cut into windows (a replay gives the same windows).
        """
        until = math.inf if final else self._until()
        if until is None or until <= self.now:
            return 0
        ready: list[EventWindow] = []
        for cut in self._cuts(until):
            ready += self._advance(cut)
            self.now = cut
        if not ready:
            return 0
        self.windows += len(ready)
        started = time.perf_counter()
        decisions = self._decide(ready)
        self.health.observe("inference_seconds", time.perf_counter() - started)
        origin = Origin(
            self.origin.store,
            self.origin.bay,
            self.origin.skus,
            self.decider.decided_by,
            self.decider.model_version,
        )
        wall = self.wall_clock()
        fields: list[dict[str, Any]] = []
        for win, d in zip(ready, decisions, strict=True):
            evs = window_events(win, d, self.book, origin, wall_time=wall)
            if win.episode > self.skip_through:
                fields += evs
        if not fields:
            return 0
        committed = self.emit(fields)
        n = len(committed) if isinstance(committed, list) else len(fields)
        self.emitted += n
        self.health.count("events_decided", n)
        for f in fields:
            self.health.count(f"decisions.{f['kind']}.{f['decided_by']}")  # the guard may rule
        self.health.set("stock_units", {str(k): v for k, v in sorted(self.book.units.items())})
        if math.isfinite(until):
            self.health.set("decided_until", round(until, 3))
        if self.stock_file is not None:
            save_stock(self.stock_file, self.book)
        return n

    def _decide(self, ready: list[EventWindow]) -> list[WindowDecision]:
        """The decider's calls; without a camera, ``blind`` decides the windows nobody saw.

        A window without presence means "nobody there" only while the camera is up;
        with the camera down or absent it means "not seen", and calling every change
        a sensor fault would stop the stock count.
        """
        if self.blind is None or self.inbox.up.get("camera", False):
            return self.decider.decide(ready)
        unseen = [i for i, w in enumerate(ready) if w.presence is None]
        if unseen:
            self.health.count("windows_unseen", len(unseen))
        seen = [i for i, w in enumerate(ready) if w.presence is not None]
        out: dict[int, WindowDecision] = {}
        for idx, decider in ((seen, self.decider), (unseen, self.blind)):
            if idx:
                got = decider.decide([ready[i] for i in idx])
                out.update(zip(idx, got, strict=True))
        return [out[i] for i in range(len(ready))]

    def run(self, stop: threading.Event) -> None:
        """Decide as sensing goes on, until ``stop``; a finished simulation is flushed."""
        while not stop.is_set():
            try:
                new = self.watch.poll() if self.watch is not None else None
                if new is not None:
                    self.decider = new
                    log.info("now deciding by %s (model %s)", new.decided_by, new.model_version)
                self.step()
                if self.inbox.horizon() == math.inf:
                    self.step(final=True)
                    self.health.set("sim_done", True)
                    stop.wait()
                    return
            except Exception:
                log.exception("decision pass failed")
                self.health.count("decision_errors")
            stop.wait(self.poll_s)
