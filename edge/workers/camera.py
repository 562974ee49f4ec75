"""The camera feed: the camera stage's worker driven frame by frame into the inbox.

:class:`~edge.camera.worker.CameraWorker` (the camera stage) opens the source, reads a
frame, runs the presence detector, and reconnects a failing camera with backoff while
its :class:`~edge.camera.health.CameraHealth` says ``down``; its ``step`` never raises.
:class:`CameraFeed` drives it one step at a time: in sim mode it paces frames to the
shared clock, it leaves closed episodes in the :class:`~edge.workers.timeline.Inbox`
with the frame time and whether the bay is occupied, mirrors the camera's state into
the agent's health (component ``camera``, alarm ``camera_down``, gauge ``camera``),
and takes the camera out of the decision horizon while it is down, so weight keeps
being decided. A simulated camera that played its whole run is finished, not reopened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.camera.worker import CameraWorker
from edge.health import Health
from edge.workers.timeline import Inbox, Pace

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 1.0


class CameraFeed:
    """One camera worker stepped on its own thread, its output handed to the inbox."""

    def __init__(
        self,
        camera: CameraWorker,
        inbox: Inbox,
        *,
        health: Health,
        pace: Pace | None = None,
        frames_total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera = camera
        self.inbox = inbox
        self.health = health
        self.pace = pace
        self.frames_total = frames_total  # a finite (simulated) source ends after this many
        self._clock = clock
        self._reported = -HEALTH_EVERY_S
        self._seen: tuple[str, int] = ("", -1)

    @property
    def frames(self) -> int:
        """Good frames processed so far."""
        return self.camera.health.frames

    def step(self) -> int:
        """One camera step; returns how many episodes it closed."""
        cam = self.camera
        before = cam.health.frames
        closed = cam.step()
        t = cam.detector.last_t
        if cam.health.frames > before and t is not None:
            open_now = cam.detector.open_episodes(t)
            bay = next((p.t_enter for p in open_now if p.zone == "bay"), None)
            self.inbox.put_presences(closed, t, bay_since=bay)
            # what `edge watch` shows: the zones someone is in now, for how long
            self.health.set("presence", {p.zone: round(t - p.t_enter, 1) for p in open_now})
        elif closed:
            self.inbox.put_presences(closed, t if t is not None else 0.0)
        if closed:
            self.health.count("presences", len(closed))
        self._report()
        return len(closed)

    def _report(self, force: bool = False) -> None:
        h = self.camera.health
        now = self._clock()
        seen = (h.status, h.failures)
        if not force and seen == self._seen and now - self._reported < HEALTH_EVERY_S:
            return
        self._reported, self._seen = now, seen
        up = h.status != "down"
        self.inbox.set_up("camera", up)
        self.health.component("camera", h.status == "up", h.last_error if not up else h.status)
        self.health.set("camera", h.as_dict())
        self.health.set("camera_errors", h.failures)
        if up:
            self.health.clear("camera_down")
        else:
            self.health.alarm("camera_down", h.last_error)

    def _done(self) -> bool:
        if self.frames_total is None:
            return False
        return self.camera.health.frames + self.camera.warmup_frames >= self.frames_total

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop``; a finished simulated camera leaves the horizon and waits."""
        cam = self.camera
        try:
            while not stop.is_set():
                if self._done():
                    closed = cam.detector.flush()
                    self.inbox.put_presences(closed, cam.detector.last_t or 0.0)
                    self.inbox.finish("camera")
                    self.health.set("sim_camera_done", True)
                    stop.wait()
                    break
                self.step()
                t = cam.detector.last_t
                if (
                    self.pace is not None
                    and t is not None
                    and not self.pace.wait(t, stop, "camera")
                ):
                    break
        finally:
            self._report(force=True)
            cam.close()
