"""The weight worker: raw load-cell blocks through the signal path into the inbox.

Reads :class:`~models.types.ReadingBlock` s from the configured source (simulated
cells, HX711 boards on GPIO, or an MCU over serial), paces them in sim mode, runs the
:class:`~edge.signals.WeightPipeline` and leaves the settled changes in the
:class:`~edge.workers.timeline.Inbox`, with the slots' settled absolute loads every few
seconds (what level reports count from). Health gets a ``loadcells`` component (how many
of the slots' channels gave valid samples in the last block and are not stuck, naming
the stuck ones) and counters. A failing
block read is logged, counted and retried; the camera has no say in any of this.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from edge.health import Health
from edge.signals.pipeline import WeightPipeline
from edge.workers.timeline import Inbox, Pace
from models.types import ReadingBlock

log = logging.getLogger(__name__)

BlockSource = Callable[[threading.Event], Iterable[ReadingBlock]]


class WeightWorker:
    """Blocks in, changes out; ``source(stop)`` gives blocks until it ends or ``stop`` is set."""

    def __init__(
        self,
        source: BlockSource,
        pipeline: WeightPipeline,
        inbox: Inbox,
        *,
        health: Health,
        pace: Pace | None = None,
        finite: bool = False,
        retry_s: float = 1.0,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.inbox = inbox
        self.health = health
        self.pace = pace
        self.finite = finite
        self.retry_s = retry_s
        self.blocks = 0
        self.changes = 0
        self._channels = np.array([s.channel for s in pipeline.slots], dtype=np.intp)

    def step(self, block: ReadingBlock) -> int:
        """Process one block; returns how many changes settled in it."""
        changes = self.pipeline.process(block)
        t_end = float(block.t[-1]) if len(block) else -np.inf
        if len(block):  # before the progress moves: a report at t_end finds its loads
            loads = {k: g for k, g in self.pipeline.levels().items() if math.isfinite(g)}
            self.inbox.put_levels(t_end, loads)
            # what `edge watch` shows: each slot's settled load now
            self.health.set("slot_grams", {str(k): round(g, 1) for k, g in sorted(loads.items())})
        self.inbox.put_changes(changes, t_end)
        self.blocks += 1
        self.changes += len(changes)
        if changes:
            self.health.count("weight_changes", len(changes))
        if len(block):
            cols = self._channels[self._channels < block.channels]
            stuck = self.pipeline.stuck_channels()
            live = block.valid[:, cols].any(axis=0) & ~np.isin(cols, stuck)
            ok = int(live.sum())
            detail = f"{ok}/{len(self._channels)} channels"
            if stuck:
                detail += f", stuck (one code repeated): {', '.join(map(str, stuck))}"
            self.health.component("loadcells", ok == len(self._channels), detail)
        return len(changes)

    def run(self, stop: threading.Event) -> None:
        """Read, pace, process until ``stop``; a finished simulation leaves the horizon."""
        while not stop.is_set():
            try:
                blocks: Iterator[ReadingBlock] = iter(self.source(stop))
                for block in blocks:
                    if self.pace is not None and len(block):
                        if not self.pace.wait(float(block.t[-1]), stop, "weight"):
                            return
                    elif stop.is_set():
                        return
                    self.step(block)
            except Exception as err:  # a read error must not stop sensing
                log.exception("load-cell source failed")
                self.health.count("loadcell_errors")
                self.health.component("loadcells", False, f"source failed: {err}"[:200])
                stop.wait(self.retry_s)
                continue
            if self.finite:
                self.inbox.finish("weight")
                self.health.set("sim_weight_done", True)
                stop.wait()
                return
            stop.wait(self.retry_s)  # a live source that ended: open it again
