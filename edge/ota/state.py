"""The unit's OTA decisions, pure: desired versions, fetch and check outcomes and time in, actions out.

A new desired version is fetched (:class:`Fetch`), checked (:class:`Verify`: TUF has
already checked length and hashes; the bundle's signature, its minimum agent version
and its golden outputs on this unit), staged in the inactive slot and switched to
(:class:`Switch`). The switch starts a watch: inference errors, a model that fails
to load, a collapsed decision distribution (one label for nearly every window where
the model before did not), or the agent restarting ``max_boots`` times before the
watch ends, put the previous slot back (:class:`RollBack`). A version that failed or rolled back is not
tried again until the desired version changes. Every step says where it is
(:class:`Report`, sent to the cloud as ``models.wire.OtaReport``).

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

Phase = Literal["idle", "downloading", "verifying", "watching"]
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


Action = Fetch | Verify | Switch | RollBack | Report


@dataclass
class OtaSettings:
    """How long to watch, how much to tolerate, how long to wait before a retry."""

    watch_s: float = 600.0
    max_errors: int = 3
    max_boots: int = 3
    retry_s: float = 60.0
    collapse_share: float = 0.95
    min_windows: int = 50


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

    def desire(self, version: int | None, now: float) -> list[Action]:
        """The cloud's desired version (None: no opinion)."""
        if version != self.desired:
            self.desired = version
            if version != self.refused:
                self.refused = None  # a new wish: a refused version may be tried again
        if version is None or version == self.refused:
            return []
        if version == self.current:
            if self.phase in ("downloading", "verifying"):
                self._idle()
                return [Report("active", self.current, self.previous)]
            return []
        if self.phase == "watching" or version == self.previous:
            if version == self.previous:
                return self._switch(version, now)
            self._idle()
        if self.phase in ("downloading", "verifying") and self.target == version:
            return []  # already on it
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
        """The staged bundle passed every check: switch to it."""
        if self.phase != "verifying" or version != self.target:
            return []
        return [Report("staged", version, self.current), *self._switch(version, now)]

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
        if self.phase in ("downloading", "verifying"):
            target = self.target
            self._idle()  # a half-done download or check is started again from the top
            if target is not None and target == self.desired:
                return self.desire(target, now)
        return self.desire(self.desired, now)

    # -- transitions -------------------------------------------------------------------

    def _idle(self) -> None:
        self.phase, self.target, self.retry_at = "idle", None, None
        self.watch_until, self.errors, self.boots = None, 0, 0

    def _switch(self, version: int, now: float) -> list[Action]:
        self._idle()
        self.previous, self.current = self.current, version
        self.phase, self.watch_until = "watching", now + self.settings.watch_s
        return [Switch(version)]

    def _fail(self, reason: str) -> list[Action]:
        version = self.target
        self.refused = version
        self._idle()
        return [Report("failed", version, self.current, reason)]

    def _roll_back(self, reason: str) -> list[Action]:
        bad = self.current
        self.refused = bad
        self._idle()
        self.current, self.previous = self.previous, bad
        return [RollBack(self.current, reason), Report("rolled_back", bad, self.current, reason)]
