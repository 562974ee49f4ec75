"""The decision worker: inbox values into windows, windows decided, events committed.

Each pass takes the sensed values up to the inbox's horizon (in sim mode rounded down
to whole ``tick_s``, so the same simulated day is always cut the same way), feeds them
to the :class:`~edge.windows.Windower` in time order, decides the windows nothing more
can join (model or rules, :mod:`edge.workers.decide`), books their stock
(:class:`~edge.stock.StockBook`), turns them into event fields (:mod:`edge.events`) and
commits all of one pass in one transaction through ``emit`` (the agent's buffer).
Windows numbered up to ``skip_through`` are decided and booked but not emitted: after
a restart in sim mode the day is replayed up to what the buffer already holds.
Every slot's level is reported (:class:`LevelReports`: at start, then every
``stock.report_interval_s``) from the scale's loads of the slots with no change still
undecided, and staff recounts waiting in the data folder (:mod:`edge.recount`) reset
their slot and are said in the feed; the book's implausible states raise the
``stock_implausible`` alarm.
A bundle installed while the agent runs is picked up (``watch``). A candidate model
in shadow (``shadow``, seated by the OTA worker) decides each pass's windows too,
after the model in use and only to be scored; per-window inference times go to
``latency`` for the OTA watch. While the camera is
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

from edge.events import Origin, WindowDecision, level_report, window_events
from edge.health import Health
from edge.ota.shadow import LatencyLog, ShadowSeat
from edge.recount import take_recounts
from edge.stock import StockBook
from edge.windows import Windower
from edge.workers.decide import BundleWatch, WindowDecider
from edge.workers.state import save_stock
from edge.workers.timeline import Inbox
from models.types import Presence
from models.window import EventWindow

log = logging.getLogger(__name__)

START_GRACE_S = 30.0  # the start report waits this long for every slot's first load

Emit = Callable[[Iterable[Mapping[str, Any]]], object]


class LevelReports:
    """When the slots' levels are reported: once at start, then at every multiple of ``every_s``.

    The start report goes out at the first tick past ``after`` (what a restarted unit
    replays) once every slot's count is known, or :data:`START_GRACE_S` after the first
    tick anyway (with the slots that are known). ``every_s`` 0: start report only.
    """

    def __init__(self, every_s: float, *, after: float = -math.inf) -> None:
        self.every_s = every_s
        self.after = after
        self.first: float | None = None
        self.next: float | None = None  # None: the start report is still to come

    def due(self, t: float, book: StockBook) -> str | None:
        """``start``, ``periodic`` or None for sensor time ``t``."""
        if self.next is None:
            if t <= self.after:
                return None
            if self.first is None:
                self.first = t
            if None in book.units.values() and t - self.first < START_GRACE_S:
                return None
            self.next = self._after(t)
            return "start"
        if t < self.next:
            return None
        self.next = self._after(t)
        return "periodic"

    def _after(self, t: float) -> float:
        """The next whole multiple of ``every_s``: the same times whenever a unit restarted."""
        if self.every_s <= 0:
            return math.inf
        return (math.floor(t / self.every_s) + 1) * self.every_s


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
        reports: LevelReports | None = None,
        resume_t: float = -math.inf,
        recount_dir: Path | None = None,
        on_committed: Callable[[int, float], None] | None = None,
        on_done: Callable[[], None] | None = None,
        shadow: ShadowSeat | None = None,
        latency: LatencyLog | None = None,
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
        self.reports = reports
        self.resume_t = resume_t
        self.recount_dir = recount_dir
        self.on_committed = on_committed
        self.on_done = on_done
        self.shadow = shadow
        self.latency = latency
        self.last_episode = skip_through
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
        never changes how a day is cut into windows (a replay gives the same windows);
        a pass that reaches a tick where a level report is due stops there, so reports
        fall on the same ticks in every replay too.
        """
        until = math.inf if final else self._until()
        origin = Origin(
            self.origin.store,
            self.origin.bay,
            self.origin.skus,
            self.decider.decided_by,
            self.decider.model_version,
        )
        wall = self.wall_clock()
        fields: list[dict[str, Any]] = []
        ready: list[EventWindow] = []
        report: str | None = None
        if until is not None and until > self.now:
            for cut in self._cuts(until):
                ready += self._advance(cut)
                self.now = cut
                if not math.isfinite(cut):
                    break
                rep = self.reports
                if rep is None:
                    continue
                if rep.next is None and cut > rep.after:
                    self._loads(cut)  # the start report waits for every slot's first load
                report = rep.due(cut, self.book)
                if report is not None:
                    break
        if ready:
            self.windows += len(ready)
            started = time.perf_counter()
            decisions = self._decide(ready)
            took = time.perf_counter() - started
            self.health.observe("inference_seconds", took)
            if self.latency is not None:
                self.latency.record(self.decider.model_version, took, len(ready))
            seen = None
            if self.shadow is not None:  # scored only: the decisions above are the ones used
                seen = self.shadow.beside(ready, decisions, took)
            for i, (win, d) in enumerate(zip(ready, decisions, strict=True)):
                beside = None if seen is None else (seen[0], seen[1][i])
                evs = window_events(win, d, self.book, origin, wall_time=wall, shadow=beside)
                if win.episode > self.skip_through:
                    fields += evs
                    self.last_episode = max(self.last_episode, win.episode)
        fields += self._recounts(origin, wall)
        if report is not None:
            fields += self._report(report, origin, wall)
        if not fields:
            if ready or report is not None:
                self._publish_stock(until)
            return 0
        committed = self.emit(fields)
        n = len(committed) if isinstance(committed, list) else len(fields)
        self.emitted += n
        self.health.count("events_decided", n)
        for f in fields:
            self.health.count(f"decisions.{f['kind']}.{f['decided_by']}")  # the guard may rule
        self._publish_stock(until)  # the book on disk follows what was committed
        if self.on_committed is not None:
            self.on_committed(self.last_episode, max(f["mono_time"] for f in fields))
        return n

    def _loads(self, t: float) -> None:
        """Count the slots without an undecided change from the scale's loads at ``t``."""
        at, loads = self.inbox.levels_at(t)
        pending = self.windower.pending_slots()
        for slot, grams in loads.items():
            if slot not in pending:
                self.book.observe(slot, grams, at)

    def _report(self, reason: str, origin: Origin, wall: datetime) -> list[dict[str, Any]]:
        self._loads(self.now)
        if self.now <= self.resume_t:
            return []  # replaying what the buffer already holds
        self.health.count(f"level_reports.{reason}")
        return level_report(
            self.book,
            origin,
            reason=reason,
            mono_time=self.now,
            wall_time=wall,
            skip=self.windower.pending_slots(),
        )

    def _recounts(self, origin: Origin, wall: datetime) -> list[dict[str, Any]]:
        """Staff recounts waiting in the data folder: reset each slot, say so in the feed."""
        if self.recount_dir is None:
            return []
        out: list[dict[str, Any]] = []
        for r in take_recounts(self.recount_dir):
            if r.slot not in self.book.state:
                log.error("recount for slot %d refused: this bay has no such slot", r.slot)
                self.health.count("recounts_refused")
                continue
            at, loads = self.inbox.levels_at(self.now) if math.isfinite(self.now) else (0, {})
            grams = loads.get(r.slot) if r.slot not in self.windower.pending_slots() else None
            upd = self.book.recount(r.slot, r.units, level_g=grams)
            log.info("slot %d recounted: %d units (was %s)", r.slot, r.units, r.units - upd.moved)
            self.health.count("recounts")
            evs = level_report(
                self.book, origin, reason="recount", mono_time=max(0.0, at), wall_time=wall
            )
            out += [e for e in evs if e["slot"] == r.slot]
        return out

    def _publish_stock(self, until: float | None) -> None:
        self.health.set("stock_units", {str(k): v for k, v in sorted(self.book.units.items())})
        flags = self.book.flags()
        self.health.set("stock_flags", {str(k): list(v) for k, v in sorted(flags.items())})
        if flags:
            detail = "; ".join(f"slot {k}: {', '.join(v)}" for k, v in sorted(flags.items()))
            self.health.alarm("stock_implausible", detail[:200])
        else:
            self.health.clear("stock_implausible")
        if until is not None and math.isfinite(until):
            self.health.set("decided_until", round(until, 3))
        if self.stock_file is not None:
            save_stock(self.stock_file, self.book)

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
                    while self.now != math.inf:  # a pass stops at each report tick
                        self.step(final=True)
                    self.health.set("sim_done", True)
                    if self.on_done is not None:
                        self.on_done()
                    stop.wait()
                    return
            except Exception:
                log.exception("decision pass failed")
                self.health.count("decision_errors")
            stop.wait(self.poll_s)
