"""The pure rollout decisions: phases, promotion after soak, abort on the failure share, halt and roll back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cloud.errors import InvalidRequestError
from cloud.rollout_plan import (
    Report,
    RolloutState,
    RolloutStateError,
    SetDesired,
    parse_phases,
    phase_sizes,
)
from cloud.shadow_scoring import HeadAccuracy

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SOAK = timedelta(hours=2)


def rollout(
    n: int = 20, phases: str = "canary:2,10%,50%,100%", abort: float = 0.05
) -> RolloutState:
    return RolloutState(
        version=2,
        phases=parse_phases(phases),
        units=tuple(f"u{i:02}" for i in range(n)),
        min_soak=SOAK,
        abort_failed=abort,
        phase_started_at=T0,
    )


def test_phases_parse_and_size() -> None:
    phases = parse_phases("canary:2,10%,50%,100%")
    assert [p.name for p in phases] == ["canary:2", "10%", "50%", "100%"]
    assert phase_sizes(phases, 20) == [2, 2, 10, 20]
    assert phase_sizes(phases, 1) == [1, 1, 1, 1]
    assert phase_sizes(parse_phases("5,1%"), 300) == [5, 5]
    for bad in ("", "canary", "10%,canary:2", "0", "150%", "ten"):
        with pytest.raises(InvalidRequestError):
            parse_phases(bad)


@given(st.text(max_size=30))
def test_parse_phases_never_crashes(text: str) -> None:
    try:
        phases = parse_phases(text)
    except InvalidRequestError:
        return
    sizes = phase_sizes(phases, 50)
    assert sizes == sorted(sizes) and all(1 <= s <= 50 for s in sizes)


def test_canary_soaks_then_promotes_through_every_phase() -> None:
    state, actions = rollout().tick(T0, {}, {})
    assert actions == [SetDesired("u00", 2), SetDesired("u01", 2)]
    assert state.touched == {"u00": None, "u01": None}
    active = {d: Report("active", 2, T0) for d in state.touched}
    state2, actions = state.tick(T0 + SOAK - timedelta(seconds=1), active, {})
    assert actions == [] and state2.phase == 0  # not soaked yet
    now = T0 + SOAK
    state, actions = state.tick(now, active, {})
    assert state.phase == 2 and len(actions) == 8  # 10% of 20 is 2: straight on to 50%
    for _ in range(2):
        reports = {d: Report("active", 2, now) for d in state.touched}
        now += SOAK
        state, actions = state.tick(now, reports, {})
    assert state.status == "completed" and len(state.touched) == 20


def test_failure_share_aborts_and_puts_units_back() -> None:
    state, _ = rollout().tick(T0, {}, {"u00": 1, "u01": 1})
    reports = {
        "u00": Report("rolled_back", 2, T0),
        "u01": Report("active", 2, T0),
    }
    state, actions = state.tick(T0, reports, {})
    assert state.status == "aborted" and "u00: rolled_back" in state.reason
    assert actions == [SetDesired("u00", 1), SetDesired("u01", 1)]


def test_failures_under_the_threshold_do_not_hold_a_phase() -> None:
    state, _ = rollout(10, "5,100%", abort=0.3).tick(T0, {}, {})
    reports = {d: Report("active", 2, T0) for d in state.touched}
    reports["u00"] = Report("failed", 2, T0)
    state, actions = state.tick(T0 + SOAK, reports, {})
    assert state.status == "running" and state.phase == 1 and len(actions) == 5


def test_reports_about_another_version_do_not_count() -> None:
    state, _ = rollout().tick(T0, {}, {})
    old = {d: Report("active", 1, T0) for d in state.touched}
    assert state.tick(T0 + 10 * SOAK, old, {})[0].phase == 0


def test_pause_resume_halt_rollback() -> None:
    state, _ = rollout().tick(T0, {}, {"u00": 1, "u01": 1})
    paused, _ = state.pause()
    active = {d: Report("active", 2, T0) for d in state.touched}
    assert paused.tick(T0 + SOAK, active, {}) == (paused, [])
    with pytest.raises(RolloutStateError):
        paused.pause()
    halted, actions = paused.resume()[0].halt()
    assert halted.status == "halted" and actions == [SetDesired("u00", 1), SetDesired("u01", 1)]
    with pytest.raises(RolloutStateError):
        halted.resume()
    done = rollout(2, "100%").tick(T0, {}, {"u00": 1, "u01": 1})[0]
    done, _ = done.tick(T0 + SOAK, {d: Report("active", 2, T0) for d in ("u00", "u01")}, {})
    assert done.status == "completed"
    back, actions = done.rollback()
    assert back.status == "rolled_back" and len(actions) == 2


class RolloutMachine(RuleBasedStateMachine):
    """Any interleaving of reports, time, ticks and operator commands keeps the invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.state = rollout(12, "canary:2,25%,50%,100%", abort=0.2)
        self.before: dict[str, int | None] = {d: 1 for d in self.state.units}
        self.desired: dict[str, int | None] = dict(self.before)
        self.reports: dict[str, Report] = {}
        self.now = T0
        self.promotions: list[tuple[int, datetime, dict[str, Report]]] = []

    def apply(self, result: tuple[RolloutState, list[SetDesired]]) -> None:
        old = self.state
        self.state, actions = result
        for a in actions:
            self.desired[a.device_id] = a.version
        if self.state.phase > old.phase:
            self.promotions.append((old.phase, self.now, dict(self.reports)))

    @rule(
        unit=st.integers(0, 11),
        state=st.sampled_from(["downloading", "shadow", "active", "failed", "rolled_back"]),
        on_target=st.booleans(),
    )
    def report(self, unit: int, state: str, on_target: bool) -> None:
        d = self.state.units[unit]
        version = 2 if on_target and self.desired[d] == 2 else 1
        old = self.reports.get(d)
        same = old is not None and (old.state, old.version) == (state, version)
        self.reports[d] = Report(state, version, old.since if old and same else self.now)

    @rule(minutes=st.integers(0, 300))
    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def tick(self) -> None:
        self.apply(self.state.tick(self.now, self.reports, self.before))

    @precondition(lambda self: self.state.status == "running")
    @rule()
    def pause(self) -> None:
        self.apply(self.state.pause())

    @precondition(lambda self: self.state.status == "paused")
    @rule()
    def resume(self) -> None:
        self.apply(self.state.resume())

    @precondition(lambda self: self.state.status in ("running", "paused"))
    @rule()
    def halt(self) -> None:
        self.apply(self.state.halt())

    @precondition(lambda self: self.state.status in ("running", "paused", "completed"))
    @rule()
    def rollback(self) -> None:
        self.apply(self.state.rollback())

    @invariant()
    def only_touched_units_get_the_version(self) -> None:
        sizes = self.state.sizes()
        allowed = set(self.state.units[: sizes[self.state.phase]])
        on_v2 = {d for d, v in self.desired.items() if v == 2}
        assert on_v2 <= set(self.state.touched) <= allowed

    @invariant()
    def stopped_rollouts_leave_every_unit_on_its_old_version(self) -> None:
        if self.state.status in ("halted", "rolled_back", "aborted"):
            assert self.desired == self.before

    @invariant()
    def completed_means_everyone_has_it(self) -> None:
        if self.state.status == "completed":
            assert set(self.state.touched) == set(self.state.units)
            assert all(v == 2 for v in self.desired.values())

    @invariant()
    def promotion_only_after_soak(self) -> None:
        for _phase, when, reports in self.promotions:
            failed = [
                d
                for d, r in reports.items()
                if r.version == 2 and r.state in ("failed", "rolled_back")
            ]
            ok = [
                d
                for d, r in reports.items()
                if r.version == 2 and r.state == "active" and when - r.since >= SOAK
            ]
            assert ok, "a phase promoted with no unit soaked"
            assert len(failed) <= 0.2 * (len(ok) + len(failed)) + 1e-9


TestRolloutMachine = RolloutMachine.TestCase
TestRolloutMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_reports_older_than_the_rollout_do_not_count() -> None:
    state, _ = replace(rollout(), created_at=T0).tick(T0, {}, {})
    stale = {d: Report("rolled_back", 2, T0 - timedelta(minutes=5)) for d in state.touched}
    state, actions = state.tick(T0 + SOAK, stale, {})
    assert state.status == "running" and actions == []
    fresh = {d: Report("active", 2, T0 + timedelta(minutes=1)) for d in state.touched}
    assert state.tick(T0 + 2 * SOAK, fresh, {})[0].phase == 2


def test_canary_must_shadow_with_enough_agreement() -> None:
    state, _ = replace(rollout(), min_shadow_agreement=0.9).tick(T0, {}, {})
    canary = sorted(state.touched)
    plain = {d: Report("active", 2, T0) for d in canary}
    assert state.tick(T0 + SOAK, plain, {})[0].phase == 0  # never shadowed: held
    good = {d: Report("active", 2, T0, shadow_agreement=0.97) for d in canary}
    assert state.tick(T0 + SOAK, good, {})[0].phase == 2
    poor = good | {canary[0]: Report("shadow", 2, T0, shadow_agreement=0.6)}
    aborted, actions = state.tick(T0 + SOAK, poor, {})
    assert aborted.status == "aborted" and "shadow agreement 0.60 below 0.90" in aborted.reason
    assert len(actions) == 2


def test_only_the_canary_is_asked_to_shadow_first() -> None:
    state, actions = replace(rollout(), min_shadow_agreement=0.9, shadow_windows=150).tick(
        T0, {}, {}
    )
    assert actions == [SetDesired(d, 2, 150, 0.9) for d in sorted(state.touched)]
    good = {d: Report("active", 2, T0, shadow_agreement=0.97) for d in state.touched}
    state, actions = state.tick(T0 + SOAK, good, {})
    assert state.phase > 0 and actions
    assert all(a.shadow_windows is None and a.min_shadow_agreement is None for a in actions)
    _, back = state.halt()
    assert all(a.shadow_windows is None for a in back)  # going back never shadows


def test_a_canary_asked_to_shadow_without_a_minimum_still_waits_for_its_figures() -> None:
    state, _ = replace(rollout(), shadow_windows=50).tick(T0, {}, {})
    plain = {d: Report("active", 2, T0) for d in state.touched}
    assert state.tick(T0 + SOAK, plain, {})[0].phase == 0
    shadowed = {d: Report("active", 2, T0, shadow_agreement=0.2) for d in state.touched}
    assert state.tick(T0 + SOAK, shadowed, {})[0].phase == 2  # no minimum: any figure will do


def test_canary_waits_for_labelled_accuracy_not_worse() -> None:
    state, _ = replace(rollout(), max_labelled_drop=0.05, min_labelled_windows=4).tick(T0, {}, {})
    active = {d: Report("active", 2, T0) for d in state.touched}
    held, _ = state.tick(T0 + SOAK, active, {})  # no labels yet
    assert held.phase == 0 and "waiting for 4 labelled shadow windows" in held.reason
    worse = {"interest": HeadAccuracy(8, 8, 6)}
    held, _ = state.tick(T0 + SOAK, active, {}, worse)
    assert held.phase == 0 and held.status == "running"
    assert "candidate 6/8 vs current 8/8" in held.reason
    fine = {"interest": HeadAccuracy(8, 7, 7), "stock": HeadAccuracy(5, 5, 5)}
    promoted, actions = held.tick(T0 + SOAK, active, {}, fine)
    assert promoted.phase >= 1 and promoted.reason == "" and actions  # 10% of 20 = canary


def test_labelled_gate_only_holds_the_canary_phase() -> None:
    state = replace(rollout(), max_labelled_drop=0.0, phase=1)
    state, _ = state.tick(T0, {}, {})
    active = {d: Report("active", 2, T0) for d in state.touched}
    assert state.tick(T0 + SOAK, active, {})[0].phase >= 2
