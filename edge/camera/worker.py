"""The camera worker: open, read, detect, and survive a camera that misbehaves.

One :meth:`CameraWorker.step` reads one frame, checks its size, feeds it to the
:class:`~edge.camera.presence.PresenceDetector` and returns the episodes it
closed. A source that fails to open, raises, gives a frame of the wrong size or
stalls (no frame for ``stall_timeout_s``) is closed and reopened after an
exponential backoff, and :class:`~edge.camera.health.CameraHealth` says ``down``
meanwhile. Nothing escapes ``step``: the agent keeps weighing whatever the camera
does. Frames are dropped after their features are taken; the only pixels that
may ever touch the disk are the optional, local, off-by-default debug snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from edge.camera.health import Backoff, CameraHealth
from edge.camera.presence import PresenceDetector
from edge.camera.source import Frame, FrameSource, check_frame
from models.atomic import atomic_write
from models.types import Presence

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "camera-debug.pgm"


class DebugSnapshot:
    """A local greyscale snapshot for setting the camera up; off unless configured.

    Keeps one file (``camera-debug.pgm``) in ``directory``, replaced atomically at
    most every ``interval_s``; nothing ever sends it anywhere.
    """

    def __init__(
        self,
        directory: Path,
        *,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    @property
    def path(self) -> Path:
        """Where the snapshot lives."""
        return self.directory / SNAPSHOT_NAME

    def offer(self, image: npt.NDArray[np.uint8]) -> bool:
        """Write ``image`` if the interval has passed; returns whether it wrote."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        h, w = image.shape
        # a debugging aid rewritten often: whole, but not worth an fsync
        with atomic_write(self.path, "wb", durable=False) as f:
            f.write(f"P5\n{w} {h}\n255\n".encode("ascii"))
            f.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        return True


class CameraWorker:
    """Runs a frame source into a presence detector and never lets a camera fault out.

    ``source_factory`` builds a fresh (unopened) source for every (re)connect;
    ``clock`` and ``sleep`` are the monotonic clock and the wait used for backoff
    and stall detection (tests pass fakes). ``on_presence`` receives every closed
    episode.
    """

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        detector: PresenceDetector,
        *,
        width: int,
        height: int,
        warmup_frames: int = 5,
        stall_timeout_s: float = 3.0,
        backoff: Backoff | None = None,
        snapshot: DebugSnapshot | None = None,
        on_presence: Callable[[Presence], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source_factory = source_factory
        self.detector = detector
        self.width = width
        self.height = height
        self.warmup_frames = warmup_frames
        self.stall_timeout_s = stall_timeout_s
        self.backoff = backoff or Backoff()
        self.snapshot = snapshot
        self.on_presence = on_presence
        self.health = CameraHealth()
        self._clock = clock
        self._sleep = sleep
        self._source: FrameSource | None = None
        self._stop: threading.Event | None = None
        self._next_attempt = clock()
        self._last_good = clock()

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        source_factory: Callable[[], FrameSource],
        *,
        on_presence: Callable[[Presence], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> CameraWorker:
        """A worker with the configured detector, timeouts, backoff and snapshot."""
        snapshot = (
            DebugSnapshot(cfg.debug_dir, interval_s=cfg.debug_interval_s, clock=clock)
            if cfg.debug_snapshot
            else None
        )
        return cls(
            source_factory,
            PresenceDetector.from_config(cfg),
            width=cfg.width,
            height=cfg.height,
            warmup_frames=cfg.warmup_frames,
            stall_timeout_s=cfg.stall_timeout_s,
            backoff=Backoff(cfg.backoff_initial_s, cfg.backoff_max_s),
            snapshot=snapshot,
            on_presence=on_presence,
            clock=clock,
            sleep=sleep,
        )

    @property
    def connected(self) -> bool:
        """True while a source is open."""
        return self._source is not None

    def step(self) -> list[Presence]:
        """One turn: (re)connect if due, else read and process one frame. Never raises."""
        try:
            if self._source is None:
                return self._connect()
            return self._read_one()
        except Exception as err:  # the camera must never take the agent down
            log.exception("camera worker: unexpected error")
            return self._fail(f"unexpected: {err!r}")

    def _connect(self) -> list[Presence]:
        now = self._clock()
        if now < self._next_attempt:
            self._wait(self._next_attempt - now)
            if self._stop is not None and self._stop.is_set():
                return []
        source: FrameSource | None = None
        try:
            source = self.source_factory()
            source.open()
            source.warm_up(self.warmup_frames)
        except Exception as err:
            if source is not None:
                _close_quietly(source)
            return self._fail(f"open failed: {err}")
        self._source = source
        self._last_good = self._clock()
        return self._emit(self.detector.reset())

    def _read_one(self) -> list[Presence]:
        assert self._source is not None
        try:
            frame = self._source.read()
        except Exception as err:
            return self._fail(f"read failed: {err}")
        if frame is None:
            if self._clock() - self._last_good >= self.stall_timeout_s:
                return self._fail(f"stalled: no frame for {self.stall_timeout_s:g} s")
            return []
        try:
            image = check_frame(frame.image, self.width, self.height)
        except Exception as err:
            self.health.bad_frames += 1
            return self._fail(f"bad frame: {err}")
        self._last_good = self._clock()
        self.health.frame(frame.t)
        self.backoff.reset()
        if self.snapshot is not None:
            try:
                self.snapshot.offer(image)
            except OSError as err:
                log.warning("camera debug snapshot not written: %s", err)
        closed = self.detector.process(Frame(image, frame.t))
        del image, frame  # the frame is not kept past its features
        return self._emit(closed)

    def _fail(self, error: str) -> list[Presence]:
        source, self._source = self._source, None
        if source is not None:
            _close_quietly(source)
        now = self._clock()
        wait = self.backoff.next()
        self._next_attempt = now + wait
        self.health.down(now, error, self._next_attempt)
        log.warning("camera down (%s); retry in %.1f s", error, wait)
        try:
            closed = self.detector.flush()
        except Exception:
            log.exception("camera worker: flushing the detector failed")
            closed = []
        return self._emit(closed)

    def _emit(self, closed: list[Presence]) -> list[Presence]:
        if self.on_presence is not None:
            for p in closed:
                try:
                    self.on_presence(p)
                except Exception:
                    log.exception("camera worker: presence consumer failed")
        return closed

    def _wait(self, seconds: float) -> None:
        if self._stop is not None and self._sleep is time.sleep:
            self._stop.wait(seconds)  # a stop request cuts a long backoff short
        else:
            self._sleep(seconds)

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then close open episodes and the source."""
        self._stop = stop
        while not stop.is_set():
            self.step()
        self._emit(self.detector.flush())
        self.close()

    def close(self) -> None:
        """Close the source if open."""
        source, self._source = self._source, None
        if source is not None:
            _close_quietly(source)


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except Exception:
        log.warning("camera source did not close cleanly", exc_info=True)
