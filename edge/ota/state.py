"""The unit's OTA decisions, pure: desired versions, fetch and check outcomes and time in, actions out.

A new desired version is fetched (:class:`Fetch`), checked (:class:`Verify`: TUF has
already checked length and hashes; the bundle's signature, its minimum agent version
and its golden outputs on this unit), staged in the inactive slot and switched to
(:class:`Switch`). When the desired spec asks for shadow windows, the staged candidate
first runs beside the current model (:class:`Shadow`, phase ``shadow``) on that many
live windows (or until ``shadow_max_s``): the current model keeps deciding, the
candidate's decisions are only scored (:mod:`edge.ota.shadow`); below the desired
minimum agreement, or with inference errors, the unit refuses the version itself.
The switch starts a watch: inference errors, a model that fails to load, inference
far slower than the previous model's (median over ``latency_windows``), a collapsed
decision distribution (one label for nearly every window where the model before did
not), or the agent restarting ``max_boots`` times before the watch ends, put the
previous slot back (:class:`RollBack`). A version that failed or rolled back is not
tried again until the desired version changes. Every step says where it is
(:class:`Report`, sent to the cloud as ``models.wire_fleet.OtaReport``).

:class:`OtaState` holds no I/O: the shell (:mod:`edge.ota.worker`) carries out the
actions in order and feeds their outcomes back; :meth:`OtaState.snapshot` is what it
persists so that a restart resumes (:meth:`OtaState.booted`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, Literal

from edge.ota.shadow import ShadowResult

Phase = Literal["idle", "downloading", "verifying", "shadow", "watching"]
PHASES: tuple[str, ...] = Phase.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Fetch:
    """Download the target of ``version`` (TUF: length and hashes) into the staging slot."""

    version: int


@dataclass(frozen=True)
class Verify:
    """Check the staged bundle of ``version``: signature, agent version, golden outputs."""

    version: int


@dataclass(frozen=True)
class Switch:
    """Make the slot holding ``version`` the one in use (one atomic pointer change)."""

    version: int


@dataclass(frozen=True)
class Shadow:
    """Load the staged ``version`` and run it beside the current model (its output unused)."""

    version: int


@dataclass(frozen=True)
class EndShadow:
    """Stop running the candidate in shadow."""


@dataclass(frozen=True)
class RollBack:
    """Put the previous slot (``to``; None: no model, the rules decide) back in use."""

    to: int | None
    reason: str


@dataclass(frozen=True)
class Report:
    """Tell the cloud: ``state`` of ``version``, ``previous`` the one before it, and why."""

    state: str
    version: int | None
    previous: int | None
    reason: str = ""
    shadow: ShadowResult | None = None


Action = Fetch | Verify | Shadow | EndShadow | Switch | RollBack | Report


@dataclass
class OtaSettings:
    """How long to watch, how much to tolerate, how long to wait before a retry."""

    watch_s: float = 600.0
    max_errors: int = 3
    max_boots: int = 3
    retry_s: float = 60.0
    collapse_share: float = 0.95
    min_windows: int = 50
    shadow_max_s: float = 3600.0
    latency_factor: float = 3.0
    latency_windows: int = 50


@dataclass
class OtaState:
    """Where the unit is with its model versions; every method returns the actions to take."""

    current: int | None = None
    previous: int | None = None
    desired: int | None = None
    phase: Phase = "idle"
    target: int | None = None
    refused: int | None = None
    watch_until: float | None = None
    errors: int = 0
    boots: int = 0
    retry_at: float | None = None
    shadow_windows: int = 0  # asked by the desired spec for ``desired``
    min_agreement: float | None = None
    shadow_until: float | None = None
    settings: OtaSettings = field(default_factory=OtaSettings)

    # -- persistence ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What to persist (JSON-able); :meth:`restore` reads it back."""
        out = dataclasses.asdict(self)
        out.pop("settings")
        return out

    @classmethod
    def restore(cls, saved: dict[str, Any], settings: OtaSettings | None = None) -> OtaState:
        """A state from :meth:`snapshot` (unknown keys and a bad phase are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"settings"}
        kept = {k: v for k, v in saved.items() if k in names}
        if kept.get("phase") not in PHASES:
            kept["phase"] = "idle"
        return cls(**kept, settings=settings or OtaSettings())

    # -- inputs ------------------------------------------------------------------------

    def desire(
        self,
        version: int | None,
        now: float,
        *,
        shadow_windows: int | None = None,
        min_agreement: float | None = None,
    ) -> list[Action]:
        """The cloud's desired version (None: no opinion), with what it asks of a shadow run.

        ``shadow_windows`` (None: keep what was asked for this version) live windows in
        shadow before switching, and ``min_agreement``, the lowest head agreement accepted.
        """
        if version != self.desired:
            self.desired = version
            self.shadow_windows, self.min_agreement = 0, None
            if version != self.refused:
                self.refused = None  # a new wish: a refused version may be tried again
        if shadow_windows is not None:
            self.shadow_windows, self.min_agreement = shadow_windows, min_agreement
        if version is None or version == self.refused:
            return []
        ending = [EndShadow()] if self.phase == "shadow" and self.target != version else []
        if version == self.current:
            if self.phase in ("downloading", "verifying", "shadow"):
                self._idle()
                return [*ending, Report("active", self.current, self.previous)]
            return []
        if self.phase in ("downloading", "verifying", "shadow") and self.target == version:
            return []  # already on it
        if self.phase == "watching" or version == self.previous:
            if version == self.previous:
                return [*ending, *self._switch(version, now)]
            self._idle()
        if ending:
            self._idle()
            return [*ending, *self.desire(version, now)]
        self.phase, self.target, self.retry_at = "downloading", version, None
        return [Report("downloading", version, self.current), Fetch(version)]

    def fetched(self, version: int, now: float) -> list[Action]:
        """The target of ``version`` is downloaded and matched its signed length and hashes."""
        if self.phase != "downloading" or version != self.target:
            return []
        self.phase = "verifying"
        return [Report("verifying", version, self.current), Verify(version)]

    def fetch_failed(self, version: int, reason: str, now: float, *, retry: bool) -> list[Action]:
        """A download failed: ``retry`` for a cut or a stall, else refused for good."""
        if self.phase != "downloading" or version != self.target:
            return []
        if retry:
            self.retry_at = now + self.settings.retry_s
            return [Report("downloading", version, self.current, reason)]
        return self._fail(reason)

    def verified(self, version: int, now: float) -> list[Action]:
        """The staged bundle passed every check: shadow it if asked, else switch to it."""
        if self.phase != "verifying" or version != self.target:
            return []
        if self.shadow_windows > 0:
            self.phase, self.shadow_until = "shadow", now + self.settings.shadow_max_s
            self.previous = None  # the slot not in use holds the candidate now
            return [Report("shadow", version, self.current), Shadow(version)]
        return [Report("staged", version, self.current), *self._switch(version, now)]

    def shadowed(self, result: ShadowResult, now: float) -> list[Action]:
        """The shadow run's figures so far; enough windows (or time up) ends it.

        Too many candidate errors, or (when the desired spec gives a minimum) a head
        agreeing less than it, or nothing to compare at all, refuses the version;
        otherwise the unit reports the figures and switches.
        """
        if self.phase != "shadow" or self.target is None:
            return []
        version = self.target
        if result.errors >= self.settings.max_errors:
            return [EndShadow(), *self._fail(f"{result.errors} inference errors in shadow", result)]
        time_up = self.shadow_until is not None and now >= self.shadow_until
        if result.windows < self.shadow_windows and not time_up:
            return []
        need, got = self.min_agreement, result.lowest
        if need is not None and (got is None or got < need):
            why = "no live window to compare" if got is None else f"{got:.2f} below {need:.2f}"
            return [
                EndShadow(),
                *self._fail(f"shadow agreement {why} ({result.describe()})", result),
            ]
        return [
            EndShadow(),
            Report("shadow", version, self.current, shadow=result),
            Report("staged", version, self.current, shadow=result),
            *self._switch(version, now),
        ]

    def shadow_failed(self, reason: str, now: float) -> list[Action]:
        """The candidate could not be put in shadow (it did not load): refused."""
        if self.phase != "shadow":
            return []
        return [EndShadow(), *self._fail(f"in shadow: {reason}")]

    def verify_failed(
        self, version: int, reason: str, now: float, *, kept: int | EllipsisType | None = ...
    ) -> list[Action]:
        """The staged bundle was refused (signature, agent version, golden outputs).

        Staging empties the slot not in use: ``kept`` is the version that slot holds now
        (None once staging began), so a later wish for the version it held is fetched
        again rather than switched to.
        """
        if self.phase != "verifying" or version != self.target:
            return []
        if kept is not ...:
            self.previous = kept
        return self._fail(reason)

    def switch_failed(
        self, reason: str, current: int | None, previous: int | None, now: float
    ) -> list[Action]:
        """The pointer could not be changed; ``current`` and ``previous`` are what disk holds."""
        if self.phase != "watching":
            return []
        failed = self.current
        self._idle()
        self.current, self.previous, self.target = current, previous, failed
        return self._fail(reason)

    def observe(self, errors: int, now: float) -> list[Action]:
        """Inference errors seen since the last call (while watching, they count)."""
        if self.phase != "watching" or errors <= 0:
            return []
        self.errors += errors
        if self.errors >= self.settings.max_errors:
            return self._roll_back(f"{self.errors} inference errors after the switch")
        return []

    def latency(
        self, new_s: float | None, old_s: float | None, windows: int, now: float
    ) -> list[Action]:
        """Median inference time per window of the new model (over ``windows``) and the old one.

        Far slower than the model before (``latency_factor`` times its median, over at
        least ``latency_windows`` windows) rolls back.
        """
        if self.phase != "watching" or new_s is None or old_s is None or old_s <= 0:
            return []
        if windows < self.settings.latency_windows:
            return []
        factor = new_s / old_s
        if factor > self.settings.latency_factor:
            return self._roll_back(
                f"latency: median {new_s * 1e3:.2f} ms per window over {windows} windows, "
                f"{factor:.1f}x the previous model's {old_s * 1e3:.2f} ms"
            )
        return []

    def model_failed(self, reason: str, now: float) -> list[Action]:
        """The model in use failed to load or run (its golden check at load, a crash)."""
        if self.phase != "watching":
            return []
        return self._roll_back(reason)

    def judge(self, new: Mapping[str, int], old: Mapping[str, int], now: float) -> list[Action]:
        """Label counts (``"stock.none"``…) of the new model since the switch and of the one before.

        One label deciding nearly every window of a head (``collapse_share`` of at least
        ``min_windows``) where the model before did not is a collapsed model: roll back.
        Without enough windows of the model before to compare, nothing is judged.
        """
        if self.phase != "watching":
            return []
        for head in sorted({k.split(".", 1)[0] for k in new}):
            mine = {k: n for k, n in new.items() if k.startswith(head + ".")}
            theirs = {k: n for k, n in old.items() if k.startswith(head + ".")}
            total, before = sum(mine.values()), sum(theirs.values())
            if total < self.settings.min_windows or before < self.settings.min_windows:
                continue
            label, n = max(mine.items(), key=lambda kv: (kv[1], kv[0]))
            share = n / total
            if share >= self.settings.collapse_share > theirs.get(label, 0) / before:
                return self._roll_back(
                    f"decision distribution collapsed: {share:.0%} {label.split('.', 1)[1]}"
                    f" ({head}, {total} windows)"
                )
        return []

    def tick(self, now: float) -> list[Action]:
        """Time passes: retry a download, end a watch."""
        if self.phase == "downloading" and self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            assert self.target is not None
            return [Fetch(self.target)]
        if self.phase == "shadow" and self.shadow_until is not None and now >= self.shadow_until:
            return []  # the shell ends it with :meth:`shadowed` (it holds the figures)
        if self.phase == "watching" and self.watch_until is not None and now >= self.watch_until:
            self._idle()
            return [Report("active", self.current, self.previous)]
        return []

    def booted(self, current: int | None, previous: int | None, now: float) -> list[Action]:
        """The agent (re)started with ``current`` and ``previous`` in the slots on disk."""
        watched = self.current if self.phase == "watching" else None
        self.current, self.previous = current, previous
        if self.phase == "watching":
            if current != watched:  # the switch or a roll-back did not persist: start over
                self._idle()
                return self.desire(self.desired, now)
            self.boots += 1
            if self.boots >= self.settings.max_boots:
                return self._roll_back(f"crash loop: {self.boots} restarts while watching")
            self.watch_until = now + self.settings.watch_s
            return []
        if self.phase == "shadow" and self.target == self.desired and self.target is not None:
            self.shadow_until = now + self.settings.shadow_max_s  # a fresh run from the start
            if previous == self.target:
                self.previous = None  # the candidate in the slot not in use is no fallback
            return [Shadow(self.target)]
        if self.phase in ("downloading", "verifying", "shadow"):
            target = self.target
            self._idle()  # a half-done download or check is started again from the top
            if target is not None and target == self.desired:
                return self.desire(target, now)
        return self.desire(self.desired, now)

    # -- transitions -------------------------------------------------------------------

    def _idle(self) -> None:
        self.phase, self.target, self.retry_at = "idle", None, None
        self.watch_until, self.errors, self.boots = None, 0, 0
        self.shadow_until = None

    def _switch(self, version: int, now: float) -> list[Action]:
        self._idle()
        self.previous, self.current = self.current, version
        self.phase, self.watch_until = "watching", now + self.settings.watch_s
        return [Switch(version)]

    def _fail(self, reason: str, shadow: ShadowResult | None = None) -> list[Action]:
        version = self.target
        self.refused = version
        self._idle()
        return [Report("failed", version, self.current, reason, shadow)]

    def _roll_back(self, reason: str) -> list[Action]:
        bad = self.current
        self.refused = bad
        self._idle()
        self.current, self.previous = self.previous, bad
        return [RollBack(self.current, reason), Report("rolled_back", bad, self.current, reason)]
