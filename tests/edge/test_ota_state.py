"""OtaState, pure: each path of an update, and a hypothesis state machine over any interleaving."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.ota.shadow import ShadowResult
from edge.ota.state import (
    Action,
    EndShadow,
    Fetch,
    OtaSettings,
    OtaState,
    Report,
    RollBack,
    Shadow,
    Switch,
    Verify,
)

S = OtaSettings(watch_s=100, max_errors=3, max_boots=3, retry_s=10)


def states(actions: list[Action]) -> list[str]:
    return [a.state for a in actions if isinstance(a, Report)]


def test_update_path_fetch_verify_switch_watch_active() -> None:
    s = OtaState(current=1, settings=S)
    acts = s.desire(2, 0)
    assert Fetch(2) in acts and states(acts) == ["downloading"]
    acts = s.fetched(2, 1)
    assert Verify(2) in acts and states(acts) == ["verifying"]
    acts = s.verified(2, 2)
    assert Switch(2) in acts and states(acts) == ["staged"]
    assert (s.current, s.previous, s.phase) == (2, 1, "watching")
    assert s.tick(50) == []
    assert s.tick(102) == [Report("active", 2, 1)]
    assert s.phase == "idle"


def test_errors_while_watching_roll_back_and_the_version_is_not_retried() -> None:
    s = OtaState(current=1, settings=S)
    s.desire(2, 0), s.fetched(2, 0), s.verified(2, 0)
    assert s.observe(2, 1) == []
    acts = s.observe(1, 2)
    assert acts[0] == RollBack(1, "3 inference errors after the switch")
    assert states(acts) == ["rolled_back"] and (s.current, s.previous) == (1, 2)
    assert s.desire(2, 3) == []  # same desired version: not tried again
    assert Fetch(3) in s.desire(3, 4)  # a new wish
    assert s.desire(2, 5) == [Switch(2)]  # back to 2: its slot is still there


def test_refused_download_reports_failed_and_keeps_the_model() -> None:
    s = OtaState(current=1, previous=0, settings=S)
    s.desire(2, 0)
    acts = s.fetch_failed(2, "target or metadata length/hash mismatch", 1, retry=False)
    assert acts == [Report("failed", 2, 1, "target or metadata length/hash mismatch")]
    assert (s.current, s.previous, s.refused) == (1, 0, 2)
    assert s.tick(1000) == [] and s.desire(2, 1000) == []


def test_a_refused_staging_lost_the_previous_slot_so_going_back_fetches_it() -> None:
    s = OtaState(current=2, previous=1, settings=S)
    s.desire(3, 0), s.fetched(3, 0)
    acts = s.verify_failed(3, "golden batch 1 interest", 1, kept=None)
    assert states(acts) == ["failed"] and (s.current, s.previous) == (2, None)
    acts = s.desire(1, 2)  # the operator rolls back to 1: its slot held the refused 3
    assert Fetch(1) in acts and Switch(1) not in acts


def test_cut_download_is_retried_later() -> None:
    s = OtaState(current=1, settings=S)
    s.desire(2, 0)
    assert states(s.fetch_failed(2, "download failed", 0, retry=True)) == ["downloading"]
    assert s.tick(5) == []
    assert s.tick(10) == [Fetch(2)]


def test_crash_loop_while_watching_rolls_back() -> None:
    s = OtaState(current=1, settings=S)
    s.desire(2, 0), s.fetched(2, 0), s.verified(2, 0)
    for n in (1, 2):
        s = OtaState.restore(s.snapshot(), S)
        assert s.booted(2, 1, n) == [] and s.boots == n
    s = OtaState.restore(s.snapshot(), S)
    acts = s.booted(2, 1, 3)
    assert acts[0] == RollBack(1, "crash loop: 3 restarts while watching")


def test_restart_mid_download_starts_again() -> None:
    s = OtaState(current=1, settings=S)
    s.desire(2, 0)
    s = OtaState.restore(s.snapshot(), S)
    acts = s.booted(1, None, 5)
    assert Fetch(2) in acts


def test_restart_after_a_switch_that_did_not_reach_disk() -> None:
    s = OtaState(current=1, settings=S)
    s.desire(2, 0), s.fetched(2, 0), s.verified(2, 0)
    s = OtaState.restore(s.snapshot(), S)
    acts = s.booted(1, None, 5)  # disk still says 1: the staged slot was not complete
    assert s.current == 1 and Fetch(2) in acts


def test_restore_ignores_garbage() -> None:
    s = OtaState.restore({"phase": "exploded", "current": 4, "nonsense": 1})
    assert s.phase == "idle" and s.current == 4


VERSIONS = st.integers(min_value=1, max_value=5)


class OtaMachine(RuleBasedStateMachine):
    """Any interleaving of wishes, outcomes, errors, time and restarts.

    A model of the disk (two slots and a pointer) carries out the actions; after every
    step the unit runs exactly the version the machine believes, that version was
    verified (or is where it started), and a refused version is never fetched again
    while it is still the one desired.
    """

    def __init__(self) -> None:
        super().__init__()
        self.s = OtaState(current=1, settings=S)
        self.now = 0.0
        self.disk: dict[str, int | None] = {"a": 1, "b": None}
        self.pointer = "a"
        self.verified = {1}
        self.fetching: set[int] = set()
        self.checking: set[int] = set()
        self.refused_while_desired: int | None = None
        self.shadowing: int | None = None

    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Fetch):
                assert a.version != self.s.refused
                self.fetching.add(a.version)
            elif isinstance(a, Verify):
                self.checking.add(a.version)
            elif isinstance(a, Shadow):  # staged (verified) in the slot not in use
                assert a.version in self.verified and self.s.current != a.version
                self.disk["b" if self.pointer == "a" else "a"] = a.version
                self.shadowing = a.version
            elif isinstance(a, EndShadow):
                self.shadowing = None
            elif isinstance(a, Switch):
                slot = next((k for k, v in self.disk.items() if v == a.version), None)
                if slot is None:  # stage into the other slot (verified just now)
                    assert a.version in self.verified
                    slot = "b" if self.pointer == "a" else "a"
                    self.disk[slot] = a.version
                self.pointer = slot
            elif isinstance(a, RollBack):
                slot = next((k for k, v in self.disk.items() if v == a.to), None)
                assert slot is not None or a.to is None
                if slot is not None:
                    self.pointer = slot

    @rule(
        v=VERSIONS,
        windows=st.sampled_from([None, 0, 20]),
        need=st.sampled_from([None, 0.9]),
    )
    def desire(self, v: int, windows: int | None, need: float | None) -> None:
        self.apply(self.s.desire(v, self.now, shadow_windows=windows, min_agreement=need))

    @precondition(lambda self: self.s.phase == "shadow")
    @rule(
        windows=st.integers(min_value=0, max_value=40),
        agree=st.floats(min_value=0, max_value=1),
        errors=st.integers(min_value=0, max_value=4),
    )
    def shadow_figures(self, windows: int, agree: float, errors: int) -> None:
        heads = {"stock": agree} if windows else {}
        self.apply(self.s.shadowed(ShadowResult(heads, windows, 1.0, errors), self.now))

    @rule()
    def shadow_failed(self) -> None:
        self.apply(self.s.shadow_failed("did not load", self.now))

    @rule(v=VERSIONS)
    def fetched(self, v: int) -> None:
        self.apply(self.s.fetched(v, self.now))

    @rule(v=VERSIONS, retry=st.booleans())
    def fetch_failed(self, v: int, retry: bool) -> None:
        self.apply(self.s.fetch_failed(v, "cut", self.now, retry=retry))

    @rule(v=VERSIONS)
    def verified_ok(self, v: int) -> None:
        if self.s.phase == "verifying" and self.s.target == v:
            self.verified.add(v)
        self.apply(self.s.verified(v, self.now))

    @precondition(lambda self: self.s.target is not None)
    @rule(ok=st.booleans())
    def target_fetched(self, ok: bool) -> None:
        assert self.s.target is not None
        if ok:
            self.apply(self.s.fetched(self.s.target, self.now))
        else:
            self.apply(self.s.fetch_failed(self.s.target, "cut", self.now, retry=True))

    @precondition(lambda self: self.s.phase == "verifying")
    @rule(ok=st.booleans())
    def target_checked(self, ok: bool) -> None:
        assert self.s.target is not None
        if ok:
            self.verified.add(self.s.target)
            self.apply(self.s.verified(self.s.target, self.now))
        else:  # staging emptied the slot not in use
            self.disk["b" if self.pointer == "a" else "a"] = None
            self.apply(self.s.verify_failed(self.s.target, "golden", self.now, kept=None))

    @rule(v=VERSIONS)
    def verify_failed(self, v: int) -> None:
        self.apply(self.s.verify_failed(v, "golden", self.now))

    @rule(n=st.integers(min_value=0, max_value=4))
    def errors(self, n: int) -> None:
        self.apply(self.s.observe(n, self.now))

    @rule(share=st.floats(min_value=0, max_value=1))
    def labels(self, share: float) -> None:
        n = round(100 * share)
        new = {"stock.none": n, "stock.removal": 100 - n}
        self.apply(self.s.judge(new, {"stock.none": 10, "stock.removal": 90}, self.now))

    @rule()
    def model_failed(self) -> None:
        self.apply(self.s.model_failed("did not load", self.now))

    @rule(dt=st.floats(min_value=0, max_value=150))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.apply(self.s.tick(self.now))

    @rule()
    def restart(self) -> None:
        self.shadowing = None  # the process died: the candidate in memory is gone
        self.s = OtaState.restore(self.s.snapshot(), S)
        other = self.disk["b" if self.pointer == "a" else "a"]
        self.apply(self.s.booted(self.disk[self.pointer], other, self.now))

    @precondition(lambda self: self.s.phase == "watching")
    @rule()
    def switch_refused(self) -> None:
        # the pointer change failed: disk is as it was before the switch
        before = self.s.previous
        slot = next((k for k, v in self.disk.items() if v == before), self.pointer)
        self.pointer = slot
        other = self.disk["b" if slot == "a" else "a"]
        self.apply(self.s.switch_failed("EIO", self.disk[slot], other, self.now))

    @invariant()
    def runs_what_it_believes(self) -> None:
        assert self.disk[self.pointer] == self.s.current

    @invariant()
    def runs_a_verified_version(self) -> None:
        assert self.s.current is None or self.s.current in self.verified

    @invariant()
    def never_runs_a_refused_version(self) -> None:
        assert self.s.refused is None or self.s.current != self.s.refused

    @invariant()
    def two_slots_two_versions(self) -> None:
        assert self.s.current is None or self.s.current != self.s.previous

    @invariant()
    def shadows_only_in_phase_shadow(self) -> None:
        assert (self.s.phase == "shadow") == (self.s.shadow_until is not None)
        if self.shadowing is not None:  # running beside, never instead of, the current model
            assert self.s.phase == "shadow" and self.s.target == self.shadowing
            assert self.disk[self.pointer] != self.shadowing

    @invariant()
    def watching_has_a_deadline(self) -> None:
        assert (self.s.phase == "watching") == (self.s.watch_until is not None)


OtaMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestOtaMachine = OtaMachine.TestCase


def watching(**kw: Any) -> OtaState:
    s = OtaState(current=1, settings=OtaSettings(watch_s=100, min_windows=20, **kw))
    s.desire(2, 0), s.fetched(2, 0), s.verified(2, 0)
    return s


def test_a_collapsed_distribution_rolls_back() -> None:
    s = watching()
    before = {"stock.removal": 30, "stock.none": 10, "stock.return": 10}
    assert s.judge({"stock.none": 19}, before, 1) == []  # too few windows to tell
    acts = s.judge({"stock.none": 48, "stock.removal": 2}, before, 2)
    assert acts[0] == RollBack(1, "decision distribution collapsed: 96% none (stock, 50 windows)")


def test_a_distribution_like_the_one_before_is_kept() -> None:
    s = watching()
    before = {"interest.pass_by": 97, "interest.glance": 3}  # a quiet corridor: that is normal
    assert s.judge({"interest.pass_by": 98, "interest.glance": 2}, before, 1) == []
    few_before = {"interest.pass_by": 5}  # too few windows of the model before to compare
    assert s.judge({"interest.pass_by": 100}, few_before, 1) == []
    assert s.phase == "watching"


def shadowing(need: float | None = None, **kw: Any) -> OtaState:
    s = OtaState(current=1, previous=0, settings=OtaSettings(watch_s=100, shadow_max_s=50, **kw))
    s.desire(2, 0, shadow_windows=30, min_agreement=need)
    s.fetched(2, 0)
    acts = s.verified(2, 1)
    assert acts == [Report("shadow", 2, 1), Shadow(2)] and s.phase == "shadow"
    assert (s.current, s.previous) == (1, None)  # the slot not in use holds the candidate
    return s


def test_shadow_runs_beside_until_enough_windows_then_reports_and_switches() -> None:
    s = shadowing()
    assert s.shadowed(ShadowResult({"stock": 0.9}, 29, 1.2), 2) == []  # not enough yet
    figures = ShadowResult({"interest": 0.97, "stock": 0.9}, 30, 1.2)
    acts = s.shadowed(figures, 3)
    assert acts[0] == EndShadow() and Switch(2) in acts
    assert Report("shadow", 2, 1, shadow=figures) in acts
    assert (s.current, s.previous, s.phase) == (2, 1, "watching")


def test_shadow_below_the_desired_agreement_refuses_the_version_itself() -> None:
    s = shadowing(need=0.95)
    figures = ShadowResult({"interest": 0.99, "stock": 0.8}, 40, 1.0)
    acts = s.shadowed(figures, 3)
    assert acts[0] == EndShadow() and Switch(2) not in acts
    assert states(acts) == ["failed"]
    failed = acts[-1]
    assert isinstance(failed, Report) and failed.shadow == figures
    assert failed.reason.startswith("shadow agreement 0.80 below 0.95")
    assert (s.current, s.refused, s.phase) == (1, 2, "idle")
    assert s.desire(2, 4) == []  # not tried again while it is desired


def test_shadow_time_up_judges_what_it_has_and_nothing_compared_is_refused_if_gated() -> None:
    s = shadowing()
    assert s.tick(60) == []  # the shell holds the figures: it ends the run
    assert Switch(2) in s.shadowed(ShadowResult({"stock": 0.5}, 3, 1.0), 60)
    s = shadowing(need=0.9)
    acts = s.shadowed(ShadowResult({}, 0, None), 60)
    assert states(acts) == ["failed"] and "no live window" in acts[-1].reason  # type: ignore[union-attr]


def test_candidate_errors_in_shadow_refuse_it_and_a_new_wish_ends_the_shadow() -> None:
    s = shadowing(max_errors=2)
    acts = s.shadowed(ShadowResult({"stock": 1.0}, 5, 1.0, errors=2), 2)
    assert acts[0] == EndShadow() and states(acts) == ["failed"]
    s = shadowing()
    acts = s.desire(3, 2)
    assert acts[0] == EndShadow() and Fetch(3) in acts and s.phase == "downloading"


def test_restart_in_shadow_runs_the_shadow_again_with_the_old_model_in_use() -> None:
    s = shadowing()
    s = OtaState.restore(s.snapshot(), s.settings)
    acts = s.booted(1, 2, 10)  # disk: 1 in use, the staged candidate 2 in the other slot
    assert acts == [Shadow(2)] and (s.current, s.previous, s.phase) == (1, None, "shadow")
    assert s.desire(2, 11, shadow_windows=30) == []  # the same wish: already on it


def test_latency_far_above_the_previous_models_rolls_back() -> None:
    s = watching(latency_factor=3.0, latency_windows=20)
    assert s.latency(0.010, 0.002, 19, 1) == []  # too few windows to tell
    assert s.latency(0.005, 0.002, 50, 1) == []  # 2.5x: tolerated
    assert s.latency(0.010, None, 50, 1) == []  # nothing to compare with
    acts = s.latency(0.010, 0.002, 50, 2)
    assert isinstance(acts[0], RollBack) and acts[0].to == 1
    assert acts[0].reason.startswith("latency: median 10.00 ms per window over 50 windows, 5.0x")
    assert states(acts) == ["rolled_back"] and s.refused == 2
