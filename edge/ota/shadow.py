"""Shadow evaluation: a candidate model decides the live windows beside the current one, silently.

:class:`ShadowScore` is pure: it is given, for each decision pass, the current model's
decisions and the candidate's on the same windows, and the time each took; it counts
per head (``interest``: windows with a shopper; ``stock``: one label per change) how
often the two agreed, and keeps per-window inference times so that
:meth:`ShadowScore.result` gives the median latency ratio (candidate / current).

:class:`ShadowSeat` is the thin, thread-safe seat between the OTA worker (which loads
the candidate from the staged slot and puts it in the seat) and the decision worker
(which, after deciding a pass with the current model, calls :meth:`ShadowSeat.beside`).
The candidate's decisions are scored and dropped: they never become events, and the
current model's decisions are used exactly as if no candidate were there.

:class:`LatencyLog` keeps the last per-window inference times of each model version,
for the watch after a switch (latency far above the previous model's rolls back).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge.events import WindowDecision
from models.window import EventWindow

log = logging.getLogger(__name__)

HEADS = ("interest", "stock")
MAX_SAMPLES = 10_000  # latency samples kept per shadow run and per version


@dataclass(frozen=True)
class ShadowResult:
    """What a shadow run found: agreement per head, windows compared, latency ratio, errors."""

    agreement: dict[str, float]
    windows: int
    latency_ratio: float | None
    errors: int = 0

    @property
    def lowest(self) -> float | None:
        """The agreement of the head that agreed least (None: nothing compared)."""
        return min(self.agreement.values()) if self.agreement else None

    def describe(self) -> str:
        """One line for logs and reasons."""
        heads = ", ".join(f"{h} {a:.1%}" for h, a in sorted(self.agreement.items())) or "none"
        ratio = "n/a" if self.latency_ratio is None else f"{self.latency_ratio:.2f}x"
        return f"agreement {heads} over {self.windows} windows, latency {ratio}"


@dataclass
class ShadowScore:
    """Agreement and latency of a candidate against the current model, pass by pass."""

    agreed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HEADS, 0))
    compared: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HEADS, 0))
    windows: int = 0
    errors: int = 0
    current_s: list[float] = field(default_factory=list)
    candidate_s: list[float] = field(default_factory=list)

    def add(
        self,
        current: Sequence[WindowDecision],
        candidate: Sequence[WindowDecision],
        current_s: float,
        candidate_s: float,
    ) -> None:
        """One pass: both models' decisions of the same windows and the time each took."""
        if len(current) != len(candidate):
            self.errors += 1  # a candidate that does not answer every window is wrong
            return
        if not current:
            return
        for cur, cand in zip(current, candidate, strict=True):
            self.windows += 1
            if cur.interest is not None:
                self.compared["interest"] += 1
                self.agreed["interest"] += cur.interest == cand.interest
            for (mine, _), (theirs, _) in zip(cur.stock, cand.stock, strict=False):
                self.compared["stock"] += 1
                self.agreed["stock"] += mine == theirs
            if len(cur.stock) != len(cand.stock):  # a missing label is a disagreement
                extra = abs(len(cur.stock) - len(cand.stock))
                self.compared["stock"] += extra
        n = len(current)
        if len(self.current_s) < MAX_SAMPLES:
            self.current_s.append(current_s / n)
            self.candidate_s.append(candidate_s / n)

    def failed(self) -> None:
        """The candidate raised on a pass."""
        self.errors += 1

    def result(self) -> ShadowResult:
        """The figures so far (heads with nothing compared are left out)."""
        agreement = {h: self.agreed[h] / self.compared[h] for h in HEADS if self.compared[h] > 0}
        ratio = None
        if self.current_s:
            base = statistics.median(self.current_s)
            if base > 0:
                ratio = statistics.median(self.candidate_s) / base
        return ShadowResult(agreement, self.windows, ratio, self.errors)


class Decides(Protocol):
    """What the seat needs of a candidate: decide windows."""

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        """One decision per window, in order."""
        ...


class ShadowSeat:
    """The candidate in shadow (if any), shared by the OTA and the decision worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._candidate: Decides | None = None
        self._score = ShadowScore()

    def seat(self, version: int, candidate: Decides) -> None:
        """Start shadowing ``candidate`` (version ``version``) from a fresh score."""
        with self._lock:
            self._version, self._candidate, self._score = version, candidate, ShadowScore()

    def clear(self) -> None:
        """Stop shadowing (the candidate is dropped)."""
        with self._lock:
            self._version, self._candidate = None, None

    @property
    def version(self) -> int | None:
        """The version in shadow now."""
        with self._lock:
            return self._version

    def result(self) -> ShadowResult:
        """The figures of the run in progress."""
        with self._lock:
            return self._score.result()

    def beside(
        self,
        windows: Sequence[EventWindow],
        decisions: Sequence[WindowDecision],
        seconds: float,
    ) -> tuple[int, list[WindowDecision]] | None:
        """The current model decided ``windows`` in ``seconds``: run the candidate on them too.

        The candidate's output is scored and returned with its version (so each event can
        carry what the candidate said, for scoring against labels that arrive later); it
        never decides anything. An exception from it is counted, never raised (None).
        """
        with self._lock:
            candidate, score, version = self._candidate, self._score, self._version
        if candidate is None or version is None or not windows:
            return None
        started = time.perf_counter()
        try:
            got = candidate.decide(windows)
            if len(got) != len(windows):
                raise ValueError(f"{len(got)} decisions for {len(windows)} windows")
        except Exception as err:  # a candidate must never stop the current model deciding
            log.warning("model in shadow failed on %d windows: %s", len(windows), err)
            with self._lock:
                score.failed()
            return None
        took = time.perf_counter() - started
        with self._lock:
            score.add(decisions, got, seconds, took)
        return version, list(got)


class LatencyLog:
    """The last per-window inference times of each model version (thread-safe)."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._times: defaultdict[int | None, deque[float]] = defaultdict(lambda: deque(maxlen=keep))

    def record(self, version: int | None, seconds: float, windows: int) -> None:
        """One decision pass of ``version``: ``windows`` decided in ``seconds``."""
        if windows <= 0:
            return
        with self._lock:
            self._times[version].extend([seconds / windows] * min(windows, 100))

    def median(self, version: int | None, last: int | None = None) -> tuple[float | None, int]:
        """Median per-window time of ``version`` over its ``last`` windows, and how many."""
        with self._lock:
            times = list(self._times.get(version, ()))
        if last is not None:
            times = times[-last:]
        return (statistics.median(times) if times else None), len(times)

    def forget(self, keep: Sequence[int | None]) -> None:
        """Drop every version but those in ``keep``."""
        with self._lock:
            for v in [v for v in self._times if v not in keep]:
                del self._times[v]
