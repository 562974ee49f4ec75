"""Rollout decisions, pure: a rollout's state and the units' reports in, a new state and actions out.

A rollout moves one model version through phases (``canary:2,10%,50%,100%``: the
first 2 units, then 10 %, 50 % and all of the eligible units, counted cumulatively).
On each :meth:`RolloutState.tick` it

1. aborts when the share of touched units that failed (or rolled themselves back) on
   the version is above ``abort_failed``, putting every touched unit back;
2. gives the version to the units of the current phase not yet touched, remembering
   what each had before;
3. promotes to the next phase once every touched unit reported ``active`` on the
   version for at least ``min_soak`` (failed units, under the threshold, do not hold
   it back); after the last phase the rollout is completed.

With ``shadow_windows`` the first phase's units are asked to run the candidate in
shadow beside the current model on that many live windows before switching (their
desired state says so, with ``min_shadow_agreement`` for the unit to check itself).
With ``min_shadow_agreement`` they must also have reported, from that run, at least
that agreement on every head (a unit's figure is its lowest head); one below it
counts as failed.

With ``max_labelled_drop`` the canary phase promotes only when, over the shadow
windows that later got a label, the candidate's accuracy is not below the current
model's by more than that share on any head, with at least ``min_labelled_windows``
labelled windows per head (:func:`cloud.shadow_scoring.labelled_gate`); until then
the phase waits and ``reason`` says why.

``pause``/``resume`` stop and restart promotion; ``halt`` and ``rollback`` put every
touched unit back on the version it had. The service (:mod:`cloud.rollouts`) stores the
state and applies the :class:`SetDesired` actions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from cloud.errors import ConflictError, InvalidRequestError
from cloud.shadow_scoring import HeadAccuracy, labelled_gate

FAILED_STATES: Final[frozenset[str]] = frozenset({"failed", "rolled_back"})
LIVE: Final[frozenset[str]] = frozenset({"running", "paused"})
_PHASE = re.compile(r"^(canary:)?(\d{1,6})(%?)$")


class RolloutStateError(ConflictError):
    """A command that the rollout's status does not allow (resume a halted rollout …)."""

    code = "rollout_state"


@dataclass(frozen=True)
class Phase:
    """One phase: a number of units or a share of the eligible units (cumulative)."""

    name: str
    count: int | None = None
    share: float | None = None

    def size(self, total: int) -> int:
        """How many of ``total`` units this phase covers."""
        if self.count is not None:
            return min(total, self.count)
        return min(total, math.ceil(total * (self.share or 0.0) - 1e-9))


def parse_phases(text: str) -> tuple[Phase, ...]:
    """``canary:2,10%,50%,100%`` as phases; :class:`InvalidRequestError` if malformed."""
    phases: list[Phase] = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        match = _PHASE.match(part)
        if match is None:
            raise InvalidRequestError(
                f"phase {part!r}: give canary:N, N or P%", field="phases", code="bad_phases"
            )
        if match[1] and i != 0:
            raise InvalidRequestError("only the first phase can be the canary", field="phases")
        n = int(match[2])
        if n == 0 or (match[3] and n > 100):
            raise InvalidRequestError(f"phase {part!r} is out of range", field="phases")
        phases.append(Phase(part, share=n / 100) if match[3] else Phase(part, count=n))
    return tuple(phases)


def phase_sizes(phases: tuple[Phase, ...], total: int) -> list[int]:
    """Cumulative units per phase (never shrinking, at least one unit when there are any)."""
    sizes: list[int] = []
    for phase in phases:
        sizes.append(max(sizes[-1] if sizes else 0, phase.size(total), min(1, total)))
    return sizes


@dataclass(frozen=True)
class Report:
    """A unit's latest OTA report: state, version it is about, since when."""

    state: str
    version: int | None
    since: datetime
    shadow_agreement: float | None = None


@dataclass(frozen=True)
class SetDesired:
    """Set this unit's desired model version."""

    device_id: str
    version: int | None
    shadow_windows: int | None = None  # live windows to shadow the version on first
    min_shadow_agreement: float | None = None


@dataclass(frozen=True)
class RolloutState:
    """Everything the decisions depend on; stored by the service between ticks."""

    version: int
    phases: tuple[Phase, ...]
    units: tuple[str, ...]  # eligible units in rollout order
    min_soak: timedelta
    abort_failed: float
    phase_started_at: datetime
    status: str = "running"
    phase: int = 0
    touched: Mapping[str, int | None] = field(default_factory=dict)  # unit -> version before
    reason: str = ""
    created_at: datetime | None = None  # reports older than this are about an earlier rollout
    min_shadow_agreement: float | None = None  # asked of the first phase's units
    shadow_windows: int = 0  # the first phase's units shadow this many windows first
    max_labelled_drop: float | None = None  # candidate's labelled accuracy may trail by this
    min_labelled_windows: int = 20  # labelled shadow windows per head before judging

    def report_of(self, reports: Mapping[str, Report], device_id: str) -> Report | None:
        """A unit's report if it is about this rollout's version and not older than it."""
        r = reports.get(device_id)
        if r is None or r.version != self.version:
            return None
        if self.created_at is not None and r.since < self.created_at:
            return None
        return r

    def sizes(self) -> list[int]:
        """Cumulative units per phase."""
        return phase_sizes(self.phases, len(self.units))

    def phase_of(self, device_id: str) -> int:
        """The phase a unit belongs to."""
        pos = self.units.index(device_id)
        return next(i for i, size in enumerate(self.sizes()) if pos < size)

    def failure(self, reports: Mapping[str, Report], device_id: str) -> str | None:
        """Why a touched unit counts as failed (its state, or too little shadow agreement)."""
        r = self.report_of(reports, device_id)
        if r is None:
            return None
        if r.state in FAILED_STATES:
            return r.state
        need, got = self.min_shadow_agreement, r.shadow_agreement
        if need is not None and got is not None and got < need and self._canary(device_id):
            return f"shadow agreement {got:.2f} below {need:.2f}"
        return None

    def _canary(self, device_id: str) -> bool:
        return device_id in self.units[: self.sizes()[0]]

    def _failed(self, reports: Mapping[str, Report]) -> list[str]:
        return [d for d in self.touched if self.failure(reports, d) is not None]

    def _give(self, device_id: str) -> SetDesired:
        """The version for a unit; a canary unit shadows it first when asked."""
        if self.shadow_windows > 0 and self._canary(device_id):
            return SetDesired(
                device_id, self.version, self.shadow_windows, self.min_shadow_agreement
            )
        return SetDesired(device_id, self.version)

    def _revert(self) -> list[SetDesired]:
        return [SetDesired(d, prev) for d, prev in sorted(self.touched.items())]

    def tick(
        self,
        now: datetime,
        reports: Mapping[str, Report],
        current: Mapping[str, int | None],
        labelled: Mapping[str, HeadAccuracy] | None = None,
    ) -> tuple[RolloutState, list[SetDesired]]:
        """Advance a running rollout; ``current`` is each unit's version before any touch.

        ``labelled`` is the per-head labelled accuracy of this rollout's shadow windows
        (only read when ``max_labelled_drop`` is set).
        """
        if self.status != "running" or not self.units:
            if self.status == "running":
                return replace(self, status="completed", reason="no eligible units"), []
            return self, []
        failed = self._failed(reports)
        if self.touched and len(failed) / len(self.touched) > self.abort_failed:
            why = "; ".join(sorted(f"{d}: {self.failure(reports, d)}" for d in failed)[:5])
            reason = (
                f"{len(failed)} of {len(self.touched)} units failed, more than "
                f"{self.abort_failed:.0%} ({why})"
            )
            return replace(self, status="aborted", reason=reason), self._revert()
        state, actions = self, []
        sizes = self.sizes()
        while True:
            wanted = state.units[: sizes[state.phase]]
            new = [d for d in wanted if d not in state.touched]
            if new:
                touched = dict(state.touched) | {d: current.get(d) for d in new}
                actions += [self._give(d) for d in new]
                return replace(state, touched=touched), actions
            if not state._soaked(now, reports, set(failed)):
                return state, actions
            if state.phase == 0 and state.max_labelled_drop is not None:
                verdict = labelled_gate(
                    labelled or {}, state.max_labelled_drop, state.min_labelled_windows
                )
                if not verdict.passed:
                    return replace(state, reason=verdict.why), actions
                state = replace(state, reason="")
            if state.phase + 1 >= len(self.phases) or sizes[state.phase] >= len(self.units):
                return replace(state, status="completed", reason=""), actions
            state = replace(state, phase=state.phase + 1, phase_started_at=now)

    def _soaked(self, now: datetime, reports: Mapping[str, Report], failed: set[str]) -> bool:
        for d in self.touched:
            if d in failed:
                continue
            r = self.report_of(reports, d)
            if r is None or r.state != "active":
                return False
            asked = self.min_shadow_agreement is not None or self.shadow_windows > 0
            shadowed = r.shadow_agreement is not None or not asked
            if not shadowed and self._canary(d):  # the canary must have shadowed first
                return False
            if now - r.since < self.min_soak:
                return False
        return len(failed) < len(self.touched)

    def pause(self) -> tuple[RolloutState, list[SetDesired]]:
        """Stop promoting; units keep what they have."""
        self._require("running", "pause")
        return replace(self, status="paused"), []

    def resume(self) -> tuple[RolloutState, list[SetDesired]]:
        """Promote again."""
        self._require("paused", "resume")
        return replace(self, status="running"), []

    def halt(self, reason: str = "halted by the operator") -> tuple[RolloutState, list[SetDesired]]:
        """Stop, and put every touched unit back on the version it had."""
        self._require(("running", "paused"), "halt")
        return replace(self, status="halted", reason=reason), self._revert()

    def rollback(
        self, reason: str = "rolled back by the operator"
    ) -> tuple[RolloutState, list[SetDesired]]:
        """Put every touched unit back, also after the rollout completed."""
        self._require(("running", "paused", "completed"), "roll back")
        return replace(self, status="rolled_back", reason=reason), self._revert()

    def _require(self, allowed: str | tuple[str, ...], what: str) -> None:
        ok = (allowed,) if isinstance(allowed, str) else allowed
        if self.status not in ok:
            raise RolloutStateError(f"cannot {what} a rollout that is {self.status}")
