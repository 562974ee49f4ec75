"""The OTA shell: carries out :class:`~edge.ota.state.OtaState`'s actions and feeds back outcomes.

One thread. Desired versions arrive through :meth:`OtaWorker.want` (the desired-state
handler's ``on_model``); the loop hands them, the time, the inference errors and
refused loads counted by the decision worker since the last look, and the labels the
new and the previous model decided (:meth:`OtaWorker.saw`, from the agent's ``emit``)
to the state machine, persists its snapshot (before acting, so a restart resumes from it), then
runs each action: fetch with :class:`~edge.ota.fetch.TufFetcher`, stage and check in
the slot not in use (:mod:`edge.ota.install`; ``check`` loads the bundle and replays
its golden outputs), switch or roll back the slot pointer (:class:`~edge.ota.slots.Slots`),
and report (``report``: the cloud's ``POST /v1/devices/<id>/reported``). The decision
worker notices the pointer change and swaps its model once the new one is loaded
(:class:`~edge.workers.decide.BundleWatch`), so no window is left undecided.

A shadow run asked by the desired spec loads the staged candidate here (``load``, on
this thread, so the model in use never waits for it) and seats it in :attr:`shadow`;
the decision worker runs it beside the model in use on every pass and scores it
(:mod:`edge.ota.shadow`); each look hands the figures to the state machine. The
decision worker also logs per-window inference times per version (:attr:`latency`),
which the watch after a switch compares with the previous model's.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.health import Health
from edge.ota.fetch import FetchError, TufFetcher
from edge.ota.install import Check, stage, unpack_archive
from edge.ota.shadow import Decides, LatencyLog, ShadowSeat
from edge.ota.slots import Slots
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
from models.atomic import write_text_atomic
from models.errors import BundleError
from models.wire_fleet import OtaReport

log = logging.getLogger(__name__)

Reporter = Callable[[OtaReport], None]
Loader = Callable[[Path], Decides]
Wish = tuple[int, int | None, float | None]  # version, shadow windows, minimum agreement


class OtaWorker:
    """Follows the desired model version: fetch, verify, stage, switch, watch, roll back."""

    def __init__(
        self,
        slots: Slots,
        fetcher: TufFetcher,
        *,
        state_file: Path,
        trusted_keys: Sequence[Ed25519PublicKey],
        agent_version: str,
        report: Reporter,
        health: Health,
        settings: OtaSettings | None = None,
        check: Check | None = None,
        load: Loader | None = None,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slots = slots
        self.fetcher = fetcher
        self.state_file = Path(state_file)
        self.trusted_keys = list(trusted_keys)
        self.agent_version = agent_version
        self.report = report
        self.health = health
        self.check = check
        self.load = load
        self.shadow = ShadowSeat()
        self.latency = LatencyLog()
        self.poll_s = poll_s
        self.clock = clock
        self.state = self._load(settings or OtaSettings())
        self._wanted: queue.SimpleQueue[Wish] = queue.SimpleQueue()
        self._archives: dict[int, bytes] = {}
        self._seen = self._counts()
        self._unsent: OtaReport | None = None
        self._last_report: OtaReport | None = None
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._labels: defaultdict[int | None, Counter[str]] = defaultdict(Counter)

    def _load(self, settings: OtaSettings) -> OtaState:
        try:
            saved = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return OtaState(settings=settings)
        if not isinstance(saved, dict):
            return OtaState(settings=settings)
        try:
            return OtaState.restore(saved, settings)
        except TypeError:
            return OtaState(settings=settings)

    def _save(self) -> None:
        write_text_atomic(self.state_file, json.dumps(self.state.snapshot()))
        self.health.set(
            "ota",
            {
                "phase": self.state.phase,
                "current": self.state.current,
                "previous": self.state.previous,
                "target": self.state.target,
                "refused": self.state.refused,
            },
        )

    def _counts(self) -> tuple[int, int]:
        return (
            self.health.counter("decision_errors"),
            self.health.counter("model_load_failures"),
        )

    def saw(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Events just committed (the agent's ``emit``): count labels per deciding model."""
        with self._lock:
            for e in events:
                if e.get("decided_by") == "model" and e.get("kind") in ("interest", "stock"):
                    self._labels[e.get("model_version")][f"{e['kind']}.{e['label']}"] += 1

    def _label_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Label counts of the current and the previous model; others are forgotten."""
        keep = (self.state.current, self.state.previous)
        with self._lock:
            for version in [v for v in self._labels if v not in keep]:
                del self._labels[version]
            return dict(self._labels[keep[0]]), dict(self._labels[keep[1]])

    def want(
        self,
        version: int,
        shadow_windows: int | None = None,
        min_agreement: float | None = None,
    ) -> None:
        """The cloud wants ``version`` (called from the desired-state handler's thread).

        ``shadow_windows`` live windows in shadow first (None or 0: none) and the lowest
        head agreement ``min_agreement`` the unit accepts from that run.
        """
        self._wanted.put((version, shadow_windows or 0, min_agreement))
        self.wake.set()

    # -- the loop --------------------------------------------------------------------

    def boot(self) -> None:
        """Reconcile the saved state with the slots on disk and act on it."""
        slots = self.slots
        self.run_actions(
            self.state.booted(slots.current_version(), slots.previous_version(), self.clock())
        )

    def step(self) -> None:
        """One look: new desired versions, errors seen, time; then act."""
        now = self.clock()
        actions: list[Action] = []
        while True:
            try:
                version, windows, need = self._wanted.get_nowait()
            except queue.Empty:
                break
            actions += self.state.desire(version, now, shadow_windows=windows, min_agreement=need)
        errors, refused = self._counts()
        seen_errors, seen_refused = self._seen
        self._seen = (errors, refused)
        if refused > seen_refused:
            detail = self.health.snapshot()["alarms"].get("model_refused", {}).get("detail", "")
            actions += self.state.model_failed(f"the new model did not load: {detail}", now)
        actions += self.state.observe(errors - seen_errors, now)
        if self.state.phase == "shadow" and self.shadow.version == self.state.target:
            actions += self.state.shadowed(self.shadow.result(), now)
        self.latency.forget((self.state.current, self.state.previous))
        if self.state.phase == "watching":
            actions += self.state.judge(*self._label_counts(), now)
            new_s, n = self.latency.median(self.state.current, self.state.settings.latency_windows)
            old_s, _ = self.latency.median(self.state.previous)
            actions += self.state.latency(new_s, old_s, n, now)
        actions += self.state.tick(now)
        self.run_actions(actions)
        if self._unsent is not None:
            self._send(self._unsent)

    def run(self, stop: threading.Event) -> None:
        """Boot, then step every ``poll_s`` (or at once on a new desired version) until ``stop``."""
        self.boot()
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("OTA step failed")
                self.health.count("ota_errors")
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def run_actions(self, actions: list[Action]) -> None:
        """Persist the state, then carry out ``actions`` (and those their outcomes bring)."""
        todo = list(actions)
        while todo:
            self._save()
            action = todo.pop(0)
            todo += self._do(action)
        self._save()

    # -- actions ---------------------------------------------------------------------

    def _do(self, action: Action) -> list[Action]:
        now = self.clock()
        if isinstance(action, Report):
            figures = action.shadow
            self._send(
                OtaReport(
                    state=action.state,  # type: ignore[arg-type]
                    version=action.version,
                    previous_version=action.previous,
                    reason=action.reason[:500],
                    shadow_agreement=figures.lowest if figures else None,
                    shadow_heads=figures.agreement or None if figures else None,  # type: ignore[arg-type]
                    shadow_windows=figures.windows if figures else None,
                    latency_ratio=figures.latency_ratio if figures else None,
                )
            )
            return []
        if isinstance(action, Shadow):
            return self._start_shadow(action.version, now)
        if isinstance(action, EndShadow):
            self.shadow.clear()
            return []
        if isinstance(action, Fetch):
            try:
                got = self.fetcher.fetch(action.version, progress=self._progress(action.version))
                self._archives = {action.version: got}
            except FetchError as err:
                return self.state.fetch_failed(action.version, err.reason, now, retry=err.retry)
            return self.state.fetched(action.version, now)
        if isinstance(action, Verify):
            return self._verify(action.version, now)
        if isinstance(action, Switch):
            name = self.slots.find(action.version)
            try:
                if name is None:
                    raise FileNotFoundError(f"no complete slot holds version {action.version}")
                self.slots.point(name)
            except OSError as err:
                return self.state.switch_failed(
                    f"switch failed: {err}",
                    self.slots.current_version(),
                    self.slots.previous_version(),
                    now,
                )
            log.info("model slot %s (version %d) now in use", name, action.version)
            return []
        if isinstance(action, RollBack):
            log.warning("rolling back to version %s: %s", action.to, action.reason)
            name = self.slots.find(action.to) if action.to is not None else None
            if name is None:
                self.slots.clear()
            else:
                self.slots.point(name)
            self.health.count("ota_rollbacks")
            return []
        raise TypeError(f"unknown OTA action {action!r}")

    def _verify(self, version: int, now: float) -> list[Action]:
        data = self._archives.pop(version, None)
        if data is None:  # lost (a restart between fetch and check): fetch again
            return self.state.fetch_failed(version, "archive lost", now, retry=True)
        try:
            _, bundle = stage(
                self.slots,
                unpack_archive(data),
                trusted_keys=self.trusted_keys,
                agent_version=self.agent_version,
                check=self.check,
            )
            if bundle.version != version:
                raise BundleError(f"archive of version {version} holds version {bundle.version}")
        except (BundleError, OSError) as err:
            log.warning("model version %d refused: %s", version, err)
            return self.state.verify_failed(
                version, f"bundle refused: {err}", now, kept=self.slots.previous_version()
            )
        return self.state.verified(version, now)

    def _start_shadow(self, version: int, now: float) -> list[Action]:
        """Load the staged candidate and seat it beside the model in use."""
        name = self.slots.find(version)
        if name is None or name == self.slots.current_name():
            return self.state.shadow_failed(f"no staged slot holds version {version}", now)
        if self.load is None:
            return self.state.shadow_failed("this unit cannot load a model in shadow", now)
        try:
            candidate = self.load(self.slots.slot(name))
        except Exception as err:
            log.warning("model version %d not loaded in shadow: %s", version, err)
            return self.state.shadow_failed(f"did not load: {str(err)[:200]}", now)
        self.shadow.seat(version, candidate)
        log.info("model version %d in shadow beside version %s", version, self.state.current)
        return []

    def _progress(self, version: int) -> Callable[[float], None]:
        """Reports the download of ``version`` again, with the share received."""

        def tell(share: float) -> None:
            last = self._last_report
            if last is not None and last.state == "downloading" and last.version == version:
                self._send(last.model_copy(update={"progress": round(share, 3)}))

        return tell

    def _send(self, report: OtaReport) -> None:
        self._last_report = report
        self.health.set("ota_report", report.model_dump(mode="json"))
        try:
            self.report(report)
        except Exception as err:
            log.info("OTA report not delivered (kept for the next try): %s", err)
            self.health.count("ota_report_failures")
            self._unsent = report
        else:
            self._unsent = None
