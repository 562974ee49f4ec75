"""A bay on the bench: load cells a test (acting as a person) puts known weights on.

:class:`SimBay` answers like HX711 boards behind the MCU: per-channel zero offset and
scale (counts per gram) drawn from a seed, white noise, 24-bit rails, and a dead
channel reading ``0xFFFFFF``. A test calls :meth:`SimBay.place` and
:meth:`SimBay.remove` between prompts while a reader takes :meth:`SimBay.blocks`
(endless; serve them on a pty with :class:`~firmware_bridge.pty_mcu.PtyMcu`).
:meth:`SimBay.truth` is the load each cell carries, for checking a calibration.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import numpy as np

from firmware_bridge.sim.scenario import ADC_MAX, ADC_MIN
from models.types import ReadingBlock


class SimBay:
    """Load cells under a person's control; thread-safe."""

    def __init__(
        self,
        channels: int = 4,
        *,
        sps: int = 80,
        seed: int = 1,
        noise_grams: float = 0.5,
        tray_grams: float = 250.0,
        counts_per_gram: float = 250.0,
    ) -> None:
        rng = np.random.default_rng([seed, 7])
        self.channels, self.sps = channels, sps
        self.counts_per_gram = counts_per_gram * rng.uniform(0.85, 1.15, channels)
        self.offset_counts = rng.uniform(-80_000, 80_000, channels)
        self.noise_grams = np.full(channels, float(noise_grams))
        self._load = np.full(channels, float(tray_grams))
        self._dead: set[int] = set()
        self._lock = threading.Lock()
        self._rng = np.random.default_rng([seed, 8])

    def place(self, channel: int, grams: float) -> None:
        """Put ``grams`` on ``channel`` (negative takes off)."""
        with self._lock:
            self._load[channel] += grams

    def remove(self, channel: int, grams: float) -> None:
        """Take ``grams`` off ``channel``."""
        self.place(channel, -grams)

    def truth(self, channel: int) -> float:
        """The load on ``channel`` now, grams (tray included)."""
        with self._lock:
            return float(self._load[channel])

    def set_noise(self, channel: int, grams: float) -> None:
        """White noise sigma of ``channel``, grams."""
        with self._lock:
            self.noise_grams[channel] = grams

    def disconnect(self, channel: int) -> None:
        """Pull ``channel``'s cable: it reads 0xFFFFFF, flagged invalid."""
        with self._lock:
            self._dead.add(channel)

    def counts_for(self, grams: float, channel: int) -> float:
        """The noiseless reading of ``grams`` on ``channel``."""
        return float(self.offset_counts[channel] + self.counts_per_gram[channel] * grams)

    def read(self, n: int, t0: float = 0.0) -> ReadingBlock:
        """``n`` samples of every channel as they are now."""
        with self._lock:
            grams = self._load + self._rng.standard_normal((n, self.channels)) * self.noise_grams
            raw = np.rint(self.offset_counts + self.counts_per_gram * grams)
            dead = sorted(self._dead)
        valid = (raw < ADC_MAX) & (raw > ADC_MIN)
        counts = np.clip(raw, ADC_MIN, ADC_MAX)
        counts[:, dead] = -1
        valid[:, dead] = False
        t = t0 + np.arange(n, dtype=np.float64) / self.sps
        return ReadingBlock(t, counts.astype(np.int32), valid)

    def blocks(self, block_s: float = 0.1) -> Iterator[ReadingBlock]:
        """Endless blocks of ``block_s`` seconds; each reflects the load when it is made."""
        n = max(1, round(block_s * self.sps))
        for k in itertools.count():
            yield self.read(n, k * n / self.sps)
