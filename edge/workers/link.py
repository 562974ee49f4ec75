"""The load-cell link's health in the agent's health: a component, an alarm, counters.

The serial source calls :meth:`LinkReporter.report` after every read attempt with
what :meth:`firmware_bridge.serial_link.SerialLoadCells.link_health` says. While the
link is down (unplugged, silent, drowning in damaged frames) the ``loadcell_link``
and ``loadcells`` components say so and the ``loadcell_link_down`` alarm is raised;
health goes out with the next health report (status file, MQTT, the cloud). The
link's counters (CRC errors, frames with implausible times, frames lost across
reconnects) are kept as the ``loadcell_link`` gauge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from edge.health import LOADCELL_LINK_DOWN, Health
from firmware_bridge.link_health import LinkHealth

log = logging.getLogger(__name__)

REPORT_EVERY_S = 0.25  # while nothing changes: the read loop calls far more often


class LinkReporter:
    """Puts a link's state into ``health``; logs when it goes down and comes back."""

    def __init__(self, health: Health, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.health = health
        self._clock = clock
        self._state: str | None = None
        self._at = float("-inf")

    def report(self, link: LinkHealth, counters: Mapping[str, int]) -> None:
        """Record ``link`` (at most every :data:`REPORT_EVERY_S` unless its state changed)."""
        now = self._clock()
        if link.state == self._state and now - self._at < REPORT_EVERY_S:
            return
        if link.state != self._state:
            if not link.ok:
                log.warning("load-cell link down: %s (%s)", link.state, link.detail)
            elif self._state is not None:
                log.info("load-cell link back")
        self._state, self._at = link.state, now
        h = self.health
        h.component("loadcell_link", link.ok, f"{link.state}: {link.detail}")
        if link.ok:
            h.clear(LOADCELL_LINK_DOWN)
        else:
            h.component("loadcells", False, f"link {link.state}: {link.detail}")
            h.alarm(LOADCELL_LINK_DOWN, f"{link.state}: {link.detail}")
        h.set("loadcell_link", dict(counters))
