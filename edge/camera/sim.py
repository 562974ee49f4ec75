"""Simulated camera frames of the store twin: people in zones, shadows, flicker, noise.

The source renders, frame by frame, a static shelf scene and on it whatever the
twin's :class:`~firmware_bridge.sim.truth.ZoneVisit` list says is happening: a
shopper in ``bay`` is a textured body blob (swaying with the visit's motion level;
a ``pass_by`` walks across), a hand reaching into ``slot-<n>`` is a smaller blob in
that slot's polygon. On top come soft drifting shadows and the shopper's cast
shadow, mains-like flicker and slow light drift (a global gain), and sensor noise.
Everything is drawn from seeded generators, so a (visits, zones, seed) triple
always gives the same frames; frame ``i`` is at ``t0 + i / fps``.

A person can also hold a card up to the camera (:meth:`SimulatedSource.hold_up`, e.g.
a claim code's QR made by :func:`edge.camera.drawing.qr_card`): it is drawn in front of the scene, lit
and noisy like the rest, until taken away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import numpy as np
import numpy.typing as npt

from edge.camera.drawing import shade, soft_ellipse, zone_box
from edge.camera.source import Frame, FrameSource
from edge.camera.zones import ZoneSpec, default_layout
from firmware_bridge.sim.truth import ZoneVisit

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig

F32 = npt.NDArray[np.float32]

RAMP_S = 0.4  # a person grows in/out over this long, centred on t_enter / t_leave
NOISE_BANK = 48


@dataclass(frozen=True, slots=True)
class _Actor:
    """How one visit is drawn: where, how big, what it looks like, how it moves."""

    visit: ZoneVisit
    cx: float
    cy: float
    rx: float
    ry: float
    x_from: float
    x_to: float
    walk: bool
    level: float
    sleeve: float | None
    stripe: float
    period: float
    amp: float
    freq: float
    phase: float
    cast_shadow: bool


@dataclass(frozen=True, slots=True)
class _Shadow:
    """A soft shadow drifting across the scene for a while."""

    t_start: float
    t_end: float
    x0: float
    y0: float
    vx: float
    vy: float
    rx: float
    ry: float
    strength: float


class SimulatedSource(FrameSource):
    """Deterministic frames of a shelf bay with shoppers, from the twin's zone visits."""

    key = "sim"

    def __init__(
        self,
        visits: Sequence[ZoneVisit] = (),
        *,
        zones: Sequence[ZoneSpec] | None = None,
        width: int = 320,
        height: int = 240,
        fps: float = 10.0,
        seed: int = 1,
        t0: float = 0.0,
        duration_s: float | None = None,
        shadows: bool = True,
        flicker: bool = True,
        noise: float = 3.0,
        realtime: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(width=width, height=height)
        self.visits = sorted(visits, key=lambda v: (v.t_enter, v.zone))
        self.zones = list(zones) if zones is not None else default_layout(4)
        self.fps = fps
        self.seed = seed
        self.t0 = t0
        end = max((v.t_leave for v in self.visits), default=t0)
        self.duration_s = duration_s if duration_s is not None else max(end - t0 + 3.0, 1.0)
        self.shadows = shadows
        self.flicker = flicker
        self.noise = noise
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self._xs = np.arange(width, dtype=np.float32)
        self._ys = np.arange(height, dtype=np.float32)
        self._boxes = {z.name: zone_box(z, width, height) for z in self.zones}
        self._scene = self._render_scene()
        self._actors = [self._actor(i, v) for i, v in enumerate(self.visits)]
        self._index = 0
        self._next_actor = 0
        self._active: list[_Actor] = []
        self._shadow_list: list[_Shadow] = []
        self._next_shadow_t = t0
        self._wall_start: float | None = None
        rng = np.random.default_rng([seed, 7])
        # Whole grey levels, as a sensor's noise is: a bank of int8 frames is a quarter
        # of the float32 one (3.7 MB at 320x240), made frame by frame (no float64 copy).
        self._noise_bank = np.empty((NOISE_BANK, height, width), np.int8)
        for i in range(NOISE_BANK):
            draw = np.rint(rng.standard_normal((height, width)) * noise)
            self._noise_bank[i] = np.clip(draw, -127, 127)
        self._rng = np.random.default_rng([seed, 11])
        self._light_phase = rng.uniform(0, 2 * math.pi, size=3)
        self._card: F32 | None = None

    def hold_up(self, card: npt.NDArray[np.uint8] | None) -> None:
        """Hold ``card`` (uint8 luma, no larger than a frame) in front of the camera; None takes it away."""
        if card is None:
            self._card = None
            return
        if card.ndim != 2 or card.shape[0] > self.height or card.shape[1] > self.width:
            raise ValueError(
                f"a card must be a 2-D image within {self.width}x{self.height}, got {card.shape}"
            )
        self._card = card.astype(np.float32)

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        *,
        visits: Sequence[ZoneVisit] = (),
        zones: Sequence[ZoneSpec] | None = None,
    ) -> Self:
        """The simulated camera with the config's size, rate, seed and effects."""
        return cls(
            visits,
            zones=zones if zones is not None else cfg.zone_specs(),
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            seed=cfg.sim_seed,
            shadows=cfg.sim_shadows,
            flicker=cfg.sim_flicker,
            noise=cfg.sim_noise,
            realtime=cfg.sim_realtime,
        )

    @property
    def frames_total(self) -> int:
        """How many frames the run gives before ``read`` returns ``None``."""
        return math.floor(self.duration_s * self.fps + 1e-9)

    def open(self) -> None:
        """Start (or restart) the run at frame 0 with the same seed."""
        self._index = 0
        self._next_actor = 0
        self._active = []
        self._shadow_list = []
        self._next_shadow_t = self.t0
        self._rng = np.random.default_rng([self.seed, 11])
        self._wall_start = None

    def read(self) -> Frame | None:
        """The next frame, or ``None`` once the run is over."""
        if self._index >= self.frames_total:
            return None
        t = self.t0 + self._index / self.fps
        if self.realtime:
            now = self._clock()
            if self._wall_start is None:
                self._wall_start = now
            wait = self._wall_start + (t - self.t0) - now
            if wait > 0:
                self._sleep(wait)
        image = self.render(t)
        self._index += 1
        return Frame(image, t)

    def render(self, t: float) -> npt.NDArray[np.uint8]:
        """Draw the frame at time ``t`` (frames must be asked in time order)."""
        img = self._scene.copy()
        self._update_active(t)
        for actor in self._active:
            self._draw_actor(img, actor, t)
        if self.shadows:
            self._update_shadows(t)
            for sh in self._shadow_list:
                self._draw_shadow(img, sh, t)
        card = self._card
        if card is not None:
            h, w = card.shape
            y0, x0 = (self.height - h) // 2, (self.width - w) // 2
            img[y0 : y0 + h, x0 : x0 + w] = card
        if self.flicker:
            img *= self.gain(t) * (1.0 + 0.008 * float(self._rng.standard_normal()))
        if self.noise > 0:
            img += self._noise_bank[int(self._rng.integers(NOISE_BANK))]
        np.clip(img, 0.0, 255.0, out=img)
        return img.astype(np.uint8)

    def gain(self, t: float) -> float:
        """Global light level: slow drift (minutes) times mains-like flicker (aliased ~1.3 Hz)."""
        p = self._light_phase
        drift = 1.0 + 0.12 * math.sin(2 * math.pi * t / 240.0 + p[0])
        drift += 0.05 * math.sin(2 * math.pi * t / 37.0 + p[1])
        flicker = 1.0 + 0.035 * math.sin(2 * math.pi * 1.3 * t + p[2])
        return drift * flicker

    # -- the static scene ----------------------------------------------------------

    def _render_scene(self) -> F32:
        rng = np.random.default_rng([self.seed, 3])
        h, w = self.height, self.width
        y = self._ys[:, None] / h
        x = self._xs[None, :] / w
        floor = 120.0 + 8.0 * np.sign(np.sin(x * 40.0) * np.sin(y * 30.0))
        img = np.broadcast_to(floor, (h, w)).astype(np.float32)
        img[: int(0.55 * h), :] = 95.0  # the shelf back panel
        for z in self.zones:
            if not z.name.startswith("slot-"):
                continue
            y0, y1, x0, x1 = self._boxes[z.name]
            level = float(rng.uniform(70, 140))
            cols = np.arange(x0, x1, dtype=np.float32)[None, :]
            img[y0:y1, x0:x1] = level + 14.0 * np.sign(np.sin(cols / float(rng.uniform(5, 9))))
            img[max(y1 - 3, 0) : y1 + 2, :] = 60.0  # shelf edge
        img += rng.normal(0.0, 4.0, size=(h, w)).astype(np.float32)
        return img

    # -- people --------------------------------------------------------------------

    def _actor(self, i: int, v: ZoneVisit) -> _Actor:
        rng = np.random.default_rng([self.seed, 101, i])
        y0, y1, x0, x1 = self._boxes.get(v.zone, (0, self.height, 0, self.width))
        clothes = np.random.default_rng([self.seed, 202, v.shopper])
        level = float(clothes.choice([clothes.uniform(25, 60), clothes.uniform(175, 230)]))
        sleeve: float | None = None
        m = min(max(v.motion, 0.0), 1.0)
        bw, bh = x1 - x0, y1 - y0
        if v.zone.startswith("slot-"):
            rx, ry = 0.16 * bw, 0.24 * bh
            cx = float(rng.uniform(x0 + 0.4 * bw, x1 - 0.4 * bw))
            cy = y1 - ry * 0.8
            sleeve, level = level, float(rng.uniform(175, 215))  # a hand in a sleeve
            walk, x_from, x_to = False, cx, cx
        else:
            rx, ry = min(0.1 * self.width, 0.4 * bw), 0.42 * bh
            cy = y0 + 0.5 * bh
            cx = float(rng.uniform(x0 + rx, x1 - rx))
            walk = v.intent == "pass_by"
            left = bool(rng.integers(2))
            x_from, x_to = (x0 + rx, x1 - rx) if left else (x1 - rx, x0 + rx)
        return _Actor(
            visit=v,
            cx=cx,
            cy=cy,
            rx=rx,
            ry=ry,
            x_from=x_from,
            x_to=x_to,
            walk=walk,
            level=level,
            sleeve=sleeve,
            stripe=float(rng.uniform(12, 22)),
            period=float(rng.uniform(6, 10)),
            amp=1.5 + 14.0 * m,
            freq=0.2 + 1.2 * m,
            phase=float(rng.uniform(0, 2 * math.pi)),
            cast_shadow=v.zone == "bay" and bool(rng.random() < 0.7),
        )

    def _update_active(self, t: float) -> None:
        while (
            self._next_actor < len(self._actors)
            and self._actors[self._next_actor].visit.t_enter - RAMP_S <= t
        ):
            self._active.append(self._actors[self._next_actor])
            self._next_actor += 1
        self._active = [a for a in self._active if a.visit.t_leave + RAMP_S >= t]

    def _draw_actor(self, img: F32, a: _Actor, t: float) -> None:
        v = a.visit
        grow = min((t - (v.t_enter - RAMP_S / 2)) / RAMP_S, (v.t_leave + RAMP_S / 2 - t) / RAMP_S)
        s = min(max(grow, 0.0), 1.0)
        if s <= 0.0:
            return
        w = 2 * math.pi * a.freq * t + a.phase
        if a.walk:
            span = max(v.t_leave - v.t_enter, 1e-3)
            k = min(max((t - v.t_enter) / span, 0.0), 1.0)
            cx = a.x_from + (a.x_to - a.x_from) * k
            cy = a.cy + 2.0 * math.sin(w)
        else:
            cx = a.cx + a.amp * math.sin(w)
            cy = a.cy + 0.5 * a.amp * math.sin(1.7 * w)
        rx, ry = a.rx * s, a.ry * s
        if a.cast_shadow:
            shade(
                img,
                self._xs,
                self._ys,
                cx + 0.8 * a.rx,
                cy - 1.5 * a.ry,
                a.rx * 1.1 * s,
                a.ry * 1.3 * s,
                0.3,
            )
        cut = soft_ellipse(self._xs, self._ys, cx, cy, rx, ry, soft=1.5)
        if cut is None:
            return
        ys, xs, alpha = cut
        rows = self._ys[ys, None] - cy
        texture = a.level + a.stripe * np.sin(rows * (2 * math.pi / a.period) + w * 0.5)
        if a.sleeve is not None:  # the forearm below the hand is in the shopper's clothes
            texture = np.where(rows > 0.1 * ry, texture + (a.sleeve - a.level), texture)
        patch = img[ys, xs]
        patch += alpha * (texture - patch)

    # -- shadows -------------------------------------------------------------------

    def _update_shadows(self, t: float) -> None:
        while self._next_shadow_t <= t:
            rng = self._rng
            start = self._next_shadow_t
            life = float(rng.uniform(15, 60))
            speed = float(rng.uniform(1, 6))
            ang = float(rng.uniform(0, 2 * math.pi))
            self._shadow_list.append(
                _Shadow(
                    t_start=start,
                    t_end=start + life,
                    x0=float(rng.uniform(0, self.width)),
                    y0=float(rng.uniform(0, self.height)),
                    vx=speed * math.cos(ang),
                    vy=speed * math.sin(ang),
                    rx=float(rng.uniform(0.12, 0.3)) * self.width,
                    ry=float(rng.uniform(0.12, 0.3)) * self.height,
                    strength=float(rng.uniform(0.15, 0.35)),
                )
            )
            self._next_shadow_t = start + float(rng.exponential(30.0))
        self._shadow_list = [s for s in self._shadow_list if s.t_end > t]

    def _draw_shadow(self, img: F32, sh: _Shadow, t: float) -> None:
        age = t - sh.t_start
        fade = min(age / 3.0, (sh.t_end - t) / 3.0, 1.0)
        if fade <= 0:
            return
        x = sh.x0 + sh.vx * age
        y = sh.y0 + sh.vy * age
        shade(img, self._xs, self._ys, x, y, sh.rx, sh.ry, sh.strength * fade)
