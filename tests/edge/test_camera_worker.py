"""The camera worker against a flaky camera: it reconnects with backoff and never raises."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from edge.camera.config import CameraConfig
from edge.camera.errors import CameraDisconnectedError
from edge.camera.health import Backoff, CameraHealth
from edge.camera.presence import PresenceDetector
from edge.camera.sim import SimulatedSource
from edge.camera.source import Frame, FrameSource
from edge.camera.worker import CameraWorker
from firmware_bridge.sim.truth import ZoneVisit
from models.types import Presence

W, H = 160, 120


class FakeClock:
    """Monotonic time that moves only when slept on or read from a camera."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(round(dt, 6))
        self.t += dt


class FlakySource(FrameSource):
    """A camera that behaves per plan: 'open-fails', or N good frames then a failure mode."""

    def __init__(self, plan: tuple[str, int], clock: FakeClock, sim: SimulatedSource) -> None:
        super().__init__(width=W, height=H)
        self.mode, self.good = plan
        self.clock = clock
        self.sim = sim
        self.reads = 0
        self.closed = False

    def open(self) -> None:
        if self.mode == "open-fails":
            raise CameraDisconnectedError("no camera on the bus")

    def read(self) -> Frame | None:
        self.clock.t += 0.1
        self.reads += 1
        if self.reads > self.good:
            if self.mode == "vanish":
                raise CameraDisconnectedError("device unplugged")
            if self.mode == "wrong-size":
                return Frame(np.zeros((H // 2, W // 2), dtype=np.uint8), self.clock.t)
            if self.mode == "stall":
                return None
        frame = self.sim.read()
        if frame is None:
            self.sim.open()
            frame = self.sim.read()
        assert frame is not None
        return frame

    def close(self) -> None:
        self.closed = True


def make_worker(
    plans: list[tuple[str, int]], clock: FakeClock, on_presence: Callable[[Presence], None]
) -> tuple[CameraWorker, list[FlakySource]]:
    sim = SimulatedSource(
        [ZoneVisit(1, "bay", 2.0, 5.0, 0.5, "glance")], width=W, height=H, duration_s=30
    )
    made: list[FlakySource] = []

    def factory() -> FrameSource:
        plan = plans[len(made)] if len(made) < len(plans) else ("good", 10**9)
        made.append(FlakySource(plan, clock, sim))
        return made[-1]

    cfg = CameraConfig(width=W, height=H)
    worker = CameraWorker(
        factory,
        PresenceDetector.from_config(cfg),
        width=W,
        height=H,
        warmup_frames=2,
        stall_timeout_s=2.0,
        backoff=Backoff(1.0, 8.0),
        on_presence=on_presence,
        clock=clock,
        sleep=clock.sleep,
    )
    return worker, made


def test_flaky_camera_reconnects_with_backoff_and_never_raises() -> None:
    clock = FakeClock()
    seen: list[Presence] = []

    def consumer(p: Presence) -> None:
        seen.append(p)
        raise RuntimeError("a consumer bug must not stop the camera")

    plans = [
        ("open-fails", 0),
        ("open-fails", 0),
        ("vanish", 80),
        ("wrong-size", 20),
        ("stall", 20),
        ("open-fails", 0),
    ]
    worker, made = make_worker(plans, clock, consumer)
    statuses: list[str] = []
    errors: set[str] = set()
    for _ in range(400):
        worker.step()  # would raise out of the test on any leak
        statuses.append(worker.health.status)
        errors.add(worker.health.last_error.split(":")[0])
    assert len(made) == 7 and all(s.closed for s in made[:6])
    assert errors >= {"open failed", "read failed", "bad frame", "stalled"}
    assert statuses[0] == "down" and statuses[-1] == "up"
    assert worker.health.reconnects == 4 and worker.health.bad_frames == 1
    # waits before reopening: 1, 2 (two failed opens), then reset by good frames each time,
    # and 1, 2 again around the last failed open
    backoff_waits = [s for s in clock.sleeps if s >= 0.999]
    assert backoff_waits == [1.0, 2.0, 1.0, 1.0, 1.0, 2.0]
    assert seen, "episodes keep flowing between failures"


def test_health_says_down_while_the_camera_is_gone() -> None:
    clock = FakeClock()
    worker, _ = make_worker([("vanish", 30)] + [("open-fails", 0)] * 50, clock, lambda p: None)
    for _ in range(40):
        worker.step()
    assert worker.health.status == "down" and not worker.connected
    assert worker.health.down_since is not None
    h = worker.health.as_dict()
    assert h["status"] == "down" and "open failed" in str(h["last_error"])
    waits = [s for s in clock.sleeps if s >= 0.999]
    assert waits[-1] == 8.0 and waits == sorted(waits)  # doubling, capped at the maximum


def test_run_stops_on_event_and_flushes_open_episodes() -> None:
    clock = FakeClock()
    stop = threading.Event()
    got: list[Presence] = []
    worker, made = make_worker([("good", 45)], clock, got.append)

    def stop_after_reads() -> None:
        while not made or made[0].reads < 45:
            worker.step()
        stop.set()

    stop_after_reads()
    worker.run(stop)  # returns at once: stop is set; flushes the bay episode still open
    assert [p.zone for p in got] == ["bay"] and not worker.connected


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)


def test_health_counts_reconnects() -> None:
    h = CameraHealth()
    h.frame(1.0)
    h.down(2.0, "gone", 3.0)
    h.down(3.0, "still gone", 5.0)
    assert h.down_since == 2.0 and h.failures == 2
    h.frame(6.0)
    assert h.status == "up" and h.reconnects == 1 and h.down_since is None


def test_stop_cuts_a_long_backoff_short() -> None:
    class Gone(FrameSource):
        def read(self) -> Frame | None:
            raise CameraDisconnectedError("gone")

        def open(self) -> None:
            raise CameraDisconnectedError("gone")

    cfg = CameraConfig(width=W, height=H, backoff_initial_s=30, backoff_max_s=60)
    worker = CameraWorker.from_config(cfg, lambda: Gone(width=W, height=H))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while worker.health.failures < 1:
        stop.wait(0.01)
    stop.set()  # the worker is now in a 30 s backoff
    thread.join(timeout=10)
    assert not thread.is_alive() and worker.health.status == "down"
