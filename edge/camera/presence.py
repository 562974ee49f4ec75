"""From frames to presence episodes per zone: occupancy, motion, hysteresis.

:class:`PresenceDetector` feeds each frame to the background model, measures per
zone the occupied fraction (foreground pixels) and the motion energy (share of
pixels that changed since the last frame), and hands both to one
:class:`ZoneTracker` per zone. A tracker is a small pure state machine: occupancy
at or above ``enter_fraction`` for ``enter_min_s`` opens an episode (dated back
to when it first rose); below ``leave_fraction`` for ``leave_min_s`` closes it
(dated back to when it first fell), and shorter dips are counted as re-entries.
Closed episodes leave as :class:`models.types.Presence`. Only numbers leave this
module: the frame is dropped as soon as its masks are measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from edge.camera.background import BackgroundModel, BackgroundParams
from edge.camera.zones import ZoneSet, ZoneSpec
from models.types import Presence

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig
    from edge.camera.source import Frame


class _State(Enum):
    IDLE = "idle"
    RISING = "rising"
    ACTIVE = "active"
    FALLING = "falling"


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """Thresholds and minimum durations that turn occupancy into episodes."""

    enter_fraction: float = 0.06
    leave_fraction: float = 0.03
    enter_min_s: float = 0.3
    leave_min_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.leave_fraction <= self.enter_fraction <= 1:
            raise ValueError("need 0 < leave_fraction <= enter_fraction <= 1")
        if self.enter_min_s < 0 or self.leave_min_s < 0:
            raise ValueError("minimum durations must not be negative")


class ZoneTracker:
    """Hysteresis on one zone's occupancy; emits a :class:`Presence` when an episode ends."""

    def __init__(self, zone: str, hysteresis: Hysteresis) -> None:
        self.zone = zone
        self.h = hysteresis
        self._state = _State.IDLE
        self._t_rise = 0.0
        self._t_enter = 0.0
        self._t_fall = 0.0
        self._peak = 0.0
        self._entries = 0

    @property
    def occupied(self) -> bool:
        """True while an episode is open (including a dip that may still end it)."""
        return self._state in (_State.ACTIVE, _State.FALLING)

    def update(self, t: float, occupancy: float, motion: float) -> Presence | None:
        """Take one frame's measures; return the episode that this frame closed, if any."""
        h = self.h
        st = self._state
        if st is _State.IDLE:
            if occupancy >= h.enter_fraction:
                self._state, self._t_rise, self._peak = _State.RISING, t, motion
                self._promote(t)
            return None
        if st is _State.RISING:
            if occupancy < h.enter_fraction:
                self._state = _State.IDLE
                return None
            self._peak = max(self._peak, motion)
            self._promote(t)
            return None
        if st is _State.ACTIVE:
            self._peak = max(self._peak, motion)
            if occupancy < h.leave_fraction:
                self._state, self._t_fall = _State.FALLING, t
                return self._settle(t)
            return None
        # FALLING
        if occupancy >= h.leave_fraction:
            self._state = _State.ACTIVE
            self._entries += 1
            self._peak = max(self._peak, motion)
            return None
        return self._settle(t)

    def _promote(self, t: float) -> None:
        if t - self._t_rise >= self.h.enter_min_s:
            self._state = _State.ACTIVE
            self._t_enter = self._t_rise
            self._entries = 1

    def _settle(self, t: float) -> Presence | None:
        if t - self._t_fall >= self.h.leave_min_s:
            return self._close(self._t_fall)
        return None

    def _close(self, t_leave: float) -> Presence:
        self._state = _State.IDLE
        return Presence(
            zone=self.zone,
            t_enter=self._t_enter,
            t_leave=t_leave,
            dwell=max(t_leave - self._t_enter, 0.0),
            peak_motion=self._peak,
            entries=self._entries,
        )

    def flush(self, t: float) -> Presence | None:
        """Close an open episode at ``t`` (or where it started falling): stream ended."""
        if self._state is _State.ACTIVE:
            return self._close(t)
        if self._state is _State.FALLING:
            return self._close(self._t_fall)
        self._state = _State.IDLE
        return None

    def current(self, t: float) -> Presence | None:
        """The open episode as it stands at ``t`` (dwell so far), or ``None``."""
        if not self.occupied:
            return None
        end = self._t_fall if self._state is _State.FALLING else t
        return Presence(
            self.zone, self._t_enter, end, max(end - self._t_enter, 0.0), self._peak, self._entries
        )


@dataclass(frozen=True, slots=True)
class ZoneFeatures:
    """What one frame says about each zone: occupied share and motion share, both in [0, 1]."""

    t: float
    occupancy: dict[str, float]
    motion: dict[str, float]

    def as_dict(self) -> dict[str, float]:
        """Flat numbers only (``occ.<zone>``, ``motion.<zone>``), fit for an event payload."""
        out: dict[str, float] = {"t": round(self.t, 3)}
        for k, v in self.occupancy.items():
            out[f"occ.{k}"] = round(v, 4)
        for k, v in self.motion.items():
            out[f"motion.{k}"] = round(v, 4)
        return out


def params_from_config(cfg: CameraConfig) -> BackgroundParams:
    """The background model's knobs from the ``[camera]`` config."""
    return BackgroundParams(
        scale=cfg.process_scale,
        alpha=cfg.background_alpha,
        learn_frames=cfg.learn_frames,
        threshold_sigma=cfg.threshold_sigma,
        min_diff=cfg.min_diff,
        max_sigma=cfg.max_sigma,
        shadow_suppression=cfg.shadow_suppression,
        shadow_min_ratio=cfg.shadow_min_ratio,
        light_max_ratio=cfg.light_max_ratio,
        light_rate=cfg.light_learn_factor,
        object_rate=cfg.object_learn_factor,
        shadow_texture=cfg.shadow_texture,
        motion_threshold=cfg.motion_threshold,
        absorb_frames=max(int(cfg.absorb_after_s * cfg.fps), 1),
        still_frames=max(int(cfg.still_after_s * cfg.fps), 1),
    )


class PresenceDetector:
    """Frames in, per-zone features and closed :class:`Presence` episodes out."""

    def __init__(
        self,
        zones: Sequence[ZoneSpec],
        *,
        width: int,
        height: int,
        params: BackgroundParams | None = None,
        hysteresis: Hysteresis | None = None,
    ) -> None:
        self.background = BackgroundModel(width, height, params)
        bh, bw = self.background.shape
        self.zones = ZoneSet(zones, bw, bh)
        base = hysteresis or Hysteresis()
        self.trackers = [
            ZoneTracker(
                z.name,
                Hysteresis(
                    z.enter_fraction or base.enter_fraction,
                    z.leave_fraction or base.leave_fraction,
                    base.enter_min_s,
                    base.leave_min_s,
                ),
            )
            for z in zones
        ]
        self.last_features: ZoneFeatures | None = None
        self.last_t: float | None = None

    @classmethod
    def from_config(cls, cfg: CameraConfig) -> PresenceDetector:
        """A detector for the configured zones, frame size and thresholds."""
        return cls(
            cfg.zone_specs(),
            width=cfg.width,
            height=cfg.height,
            params=params_from_config(cfg),
            hysteresis=Hysteresis(
                cfg.enter_fraction, cfg.leave_fraction, cfg.enter_min_s, cfg.leave_min_s
            ),
        )

    def process(self, frame: Frame) -> list[Presence]:
        """Measure one frame; return the episodes it closed (usually none)."""
        fg, motion = self.background.apply(frame.image)
        occ = self.zones.fractions(fg.astype(np.float32))
        mot = self.zones.fractions(motion.astype(np.float32))
        names = self.zones.names
        self.last_features = ZoneFeatures(
            frame.t,
            {n: float(v) for n, v in zip(names, occ, strict=True)},
            {n: float(v) for n, v in zip(names, mot, strict=True)},
        )
        self.last_t = frame.t
        if self.background.learning:
            return []
        out: list[Presence] = []
        for tracker, o, m in zip(self.trackers, occ, mot, strict=True):
            p = tracker.update(frame.t, float(o), float(m))
            if p is not None:
                out.append(p)
        return out

    def flush(self, t: float | None = None) -> list[Presence]:
        """Close every open episode (end of stream, camera lost)."""
        when = t if t is not None else (self.last_t or 0.0)
        return [p for tr in self.trackers if (p := tr.flush(when)) is not None]

    def reset(self) -> list[Presence]:
        """Close open episodes and relearn the background (after a reconnect)."""
        closed = self.flush()
        self.background.reset()
        return closed

    def open_episodes(self, t: float) -> list[Presence]:
        """Episodes still open at ``t``, with their dwell so far."""
        return [p for tr in self.trackers if (p := tr.current(t)) is not None]
