"""Simulated HX711 load cells: a planned :class:`SimRun` as raw 24-bit counts.

Each channel has its own scale (counts per gram) and zero offset drawn from the
scenario's spread. The load a cell feels is the tray plus the slot's stock, shaped
by the hands of :class:`~firmware_bridge.sim.truth.Handling` s (presses, lifts,
placements, ringing after release) and by vibration while a neighbouring slot is
handled; on top come creep after every load change, temperature drift (a slow
sinusoid plus a random walk), white noise and single-sample glitches. Faults act
as the hardware would: a stuck ADC repeats a value, an offset jump shifts the zero,
a disconnected channel reads ``0xFFFFFF`` and is flagged invalid, and a code at a
rail is flagged invalid (saturated).

Counts are generated in fixed internal chunks with their own random streams, so the
data are the same for a seed whatever block size a reader asks for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from firmware_bridge.sim.scenario import ADC_MAX, ADC_MIN, Scenario
from firmware_bridge.sim.truth import Handling
from firmware_bridge.sim.twin import SimRun
from models.types import ReadingBlock

CHUNK_S = 64.0
RAMP_S = 0.15  # a lift or placement takes this long
PRESS_RAMP_S = 0.3  # a hand takes this long to lean on, or off, the shelf
RING_S = 2.0  # ringing after a release is gone after this long
RING_TAU_S = 0.25
F64 = npt.NDArray[np.float64]


class LoadCellSim:
    """Raw counts of every channel of a simulated run, deterministic for ``seed``."""

    def __init__(self, run: SimRun, scenario: Scenario, seed: int) -> None:
        self.run, self.sc, self.seed = run, scenario, int(seed)
        self.sps = scenario.sps
        self.channels = scenario.channels
        self.n_samples = math.ceil(run.duration_s * self.sps)
        hx = scenario.hx711
        rng = np.random.default_rng([self.seed, 2])
        ch = self.channels
        self.counts_per_gram: F64 = hx.counts_per_gram * (
            1 + hx.counts_per_gram_spread * rng.uniform(-1, 1, ch)
        )
        self.offset_counts: F64 = hx.offset_counts + hx.offset_spread_counts * rng.uniform(
            -1, 1, ch
        )
        self._drift_amp = hx.drift_grams * rng.uniform(0.5, 1.5, ch)
        self._drift_period = hx.drift_period_s * rng.uniform(0.7, 1.3, ch)
        self._drift_phase = rng.uniform(0, 2 * np.pi, ch)
        n_walk = int(run.duration_s) + 2
        steps = rng.standard_normal((n_walk, ch)) * hx.drift_walk_grams
        steps[0] = 0.0
        self._walk = np.cumsum(steps, axis=0)
        self._tray = np.zeros(ch)
        self._initial = np.zeros(ch)
        self._chan_of_slot = {s.slot: s.channel for s in scenario.slots}
        for s in scenario.slots:
            self._tray[s.channel] = s.tray_grams
            self._initial[s.channel] = run.initial_grams.get(s.slot, s.initial * s.unit_grams)
        order = sorted(self._chan_of_slot)
        self._neighbours = {
            s: [order[j] for j in (i - 1, i + 1) if 0 <= j < len(order)]
            for i, s in enumerate(order)
        }
        # per channel: handling end times and cumulative load after each
        self._by_chan: list[list[Handling]] = [[] for _ in range(ch)]
        for h in run.handlings:
            self._by_chan[self._chan_of_slot[h.slot]].append(h)
        self._ends = [np.array([h.t_end for h in hs]) for hs in self._by_chan]
        self._after = [np.array([h.grams_after for h in hs]) for hs in self._by_chan]
        self._delta = [
            np.array([h.grams_after - h.grams_before for h in hs]) for hs in self._by_chan
        ]
        self._jumps = [f for f in run.faults if f.kind == "offset_jump"]
        self._holes = [f for f in run.faults if f.kind in ("stuck", "disconnect")]
        self._stuck: dict[tuple[int, float], float] = {}

    # ----------------------------------------------------------------- physics
    def _load(self, t: F64, c: int) -> F64:
        """Net load on channel ``c`` (hands included) at times ``t``."""
        ends, after = self._ends[c], self._after[c]
        idx = np.searchsorted(ends, t, side="right")
        level = np.concatenate(([self._initial[c]], after))[idx]
        t0, t1 = float(t[0]), float(t[-1])
        for h in self._by_chan[c]:
            if h.t_end + RING_S < t0 or h.t_start > t1:
                continue
            a, b = np.searchsorted(t, [h.t_start, h.t_end])
            if b > a:
                tt = t[a:b]
                w = np.full(tt.shape, h.grams_before)
                for ts, g in h.steps:
                    w += g * np.clip((tt - ts) / RAMP_S, 0.0, 1.0)
                level[a:b] = w + self._press(h, tt)
            r = np.searchsorted(t, h.t_end + RING_S)
            if r > b:
                dt = t[b:r] - h.t_end
                f = 6.0 + (h.person % 7) * 0.5
                amp = self.sc.hx711.ring_grams * (0.5 + (h.press_grams % 1.0))
                level[b:r] += amp * np.exp(-dt / RING_TAU_S) * np.sin(2 * np.pi * f * dt)
        return level

    @staticmethod
    def _press(h: Handling, tt: F64) -> F64:
        """A hand leaning on and shifting things on the shelf.

        A rocking motion of 1-2 Hz under two slower irregular ones: the load under
        a hand never holds still for a whole second while the hand is there.
        """
        x = tt - h.t_start
        env = np.clip(np.minimum(x, h.t_end - tt) / PRESS_RAMP_S, 0.0, 1.0)
        r = np.random.default_rng([h.person, h.slot, int(h.t_start * 1000)])
        freqs = np.concatenate((r.uniform(1.0, 2.0, 1), r.uniform(0.2, 1.0, 2)))
        weights = np.array([0.6, 0.2, 0.2])[:, None]
        phases = r.uniform(0, 2 * np.pi, 3)
        wave = (weights * np.sin(2 * np.pi * freqs[:, None] * x + phases[:, None])).sum(axis=0)
        return h.press_grams * env * (0.5 + 0.5 * wave)

    def _vibration(self, t: F64, c: int, slot: int) -> F64:
        amp = self.sc.hx711.vibration_grams
        out = np.zeros(t.shape)
        if amp <= 0:
            return out
        t0, t1 = float(t[0]), float(t[-1])
        for nb in self._neighbours.get(slot, []):
            for h in self._by_chan[self._chan_of_slot[nb]]:
                if h.t_end < t0 or h.t_start > t1:
                    continue
                a, b = np.searchsorted(t, [h.t_start, h.t_end])
                tt = t[a:b]
                u = (tt - h.t_start) / max(h.t_end - h.t_start, 1e-6)
                f = 5.0 + (h.person % 11)
                scale = amp * (0.5 + (h.press_grams % 1.0))
                out[a:b] += scale * np.sin(np.pi * u) * np.sin(2 * np.pi * f * tt + c)
        return out

    def _creep(self, t: F64, c: int) -> F64:
        hx = self.sc.hx711
        if hx.creep_fraction <= 0 or not len(self._ends[c]):
            return np.zeros(t.shape)
        ends, delta = self._ends[c], self._delta[c]
        done = np.concatenate(([0.0], np.cumsum(delta)))[np.searchsorted(ends, t, side="right")]
        out = done.copy()
        t1 = float(t[-1])
        recent = (ends > float(t[0]) - 12 * hx.creep_tau_s) & (ends <= t1)
        for te, d in zip(ends[recent], delta[recent], strict=True):
            m = t >= te
            out[m] -= d * np.exp(-(t[m] - te) / hx.creep_tau_s)
        return hx.creep_fraction * out

    def _chunk(self, k: int) -> tuple[F64, npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        n_chunk = int(CHUNK_S * self.sps)
        i0 = k * n_chunk
        i1 = min(i0 + n_chunk, self.n_samples)
        t = np.arange(i0, i1, dtype=np.float64) / self.sps
        rng = np.random.default_rng([self.seed, 3, k])
        hx, ch = self.sc.hx711, self.channels
        grams = rng.standard_normal((len(t), ch)) * hx.noise_grams
        grams += self._tray
        phase = 2 * np.pi * t[:, None] / self._drift_period + self._drift_phase
        grams += self._drift_amp * np.sin(phase)
        for c in range(ch):
            grams[:, c] += np.interp(t, np.arange(len(self._walk)), self._walk[:, c])
        for s in self.sc.slots:
            c = s.channel
            grams[:, c] += self._load(t, c) + self._creep(t, c) + self._vibration(t, c, s.slot)
        n_spikes = int(rng.poisson(hx.spikes_per_hour * len(t) / self.sps / 3600.0 * ch))
        if n_spikes:
            rows = rng.integers(0, len(t), n_spikes)
            cols = rng.integers(0, ch, n_spikes)
            grams[rows, cols] += rng.choice([-1.0, 1.0], n_spikes) * hx.spike_grams
        for f in self._jumps:
            grams[t >= f.t_start, f.channel] += f.grams
        raw = np.rint(self.offset_counts + self.counts_per_gram * grams)
        valid = (raw <= ADC_MAX) & (raw >= ADC_MIN)
        counts = np.clip(raw, ADC_MIN, ADC_MAX)
        for f in self._holes:
            m = (t >= f.t_start) & (t < f.t_end)
            if not m.any():
                continue
            if f.kind == "disconnect":
                counts[m, f.channel] = -1  # DOUT floating high: 0xFFFFFF
                valid[m, f.channel] = False
            else:  # chunks are made in order, so the first chunk of a fault sets its value
                key = (f.channel, f.t_start)
                if key not in self._stuck:
                    self._stuck[key] = float(counts[np.argmax(m), f.channel])
                counts[m, f.channel] = self._stuck[key]
        return t, counts.astype(np.int32), valid

    # ----------------------------------------------------------------- readers
    def blocks(self, block_s: float = 1.0) -> Iterator[ReadingBlock]:
        """The run as consecutive :class:`ReadingBlock` s of ``block_s`` seconds."""
        n_block = max(1, round(block_s * self.sps))
        n_chunks = math.ceil(self.n_samples / (CHUNK_S * self.sps))
        buf_t: list[F64] = []
        buf_c: list[npt.NDArray[np.int32]] = []
        buf_v: list[npt.NDArray[np.bool_]] = []
        have = 0
        for k in range(n_chunks):
            t, c, v = self._chunk(k)
            buf_t.append(t)
            buf_c.append(c)
            buf_v.append(v)
            have += len(t)
            if have < n_block and k + 1 < n_chunks:
                continue
            tt, cc, vv = np.concatenate(buf_t), np.concatenate(buf_c), np.concatenate(buf_v)
            cut = (len(tt) // n_block) * n_block if k + 1 < n_chunks else len(tt)
            for a in range(0, cut, n_block):
                b = min(a + n_block, cut)
                yield ReadingBlock(tt[a:b], cc[a:b], vv[a:b])
            buf_t, buf_c, buf_v = [tt[cut:]], [cc[cut:]], [vv[cut:]]
            have = len(tt) - cut

    def arrays(self) -> tuple[F64, npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        """The whole run at once: times, counts and validity."""
        parts = [self._chunk(k) for k in range(math.ceil(self.n_samples / (CHUNK_S * self.sps)))]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def calibration_blocks(
        self, known_grams: float = 1000.0, seconds: float = 3.0
    ) -> tuple[ReadingBlock, ReadingBlock]:
        """What a two-point calibration sees: empty trays, then ``known_grams`` on each."""
        n = int(seconds * self.sps)
        rng = np.random.default_rng([self.seed, 4])
        t = np.arange(n, dtype=np.float64) / self.sps
        out = []
        for load in (0.0, known_grams):
            grams = (
                self._tray
                + load
                + rng.standard_normal((n, self.channels)) * self.sc.hx711.noise_grams
            )
            counts = np.rint(self.offset_counts + self.counts_per_gram * grams)
            out.append(
                ReadingBlock(t.copy(), counts.astype(np.int32), np.ones(counts.shape, dtype=bool))
            )
        return out[0], out[1]
