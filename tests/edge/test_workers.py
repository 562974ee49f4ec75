"""Sensing and deciding workers: inbox horizon, pacing, camera faults, deciders, replay skip."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from edge.camera.errors import CameraDisconnectedError
from edge.camera.source import Frame, FrameSource
from edge.camera.worker import CameraWorker
from edge.config import SlotConfig
from edge.events import Origin
from edge.health import Health
from edge.stock import StockBook
from edge.windows import Windower
from edge.workers.camera import CameraFeed
from edge.workers.decide import RulesDecider, WeightOnlyDecider, build_decider
from edge.workers.decision import DecisionWorker
from edge.workers.state import load_stock, save_stock
from edge.workers.timeline import Inbox, Pace
from models.runtime.config import ModelConfig
from models.types import Presence, WeightChange
from models.window import EventWindow
from tests.support.waiting import wait_until


def slots() -> list[SlotConfig]:
    return [
        SlotConfig.model_validate(
            {"slot": n, "channel": n, "sku": f"SKU-{n}", "unit_grams": 100.0, "capacity": 10}
        )
        for n in range(2)
    ]


def test_inbox_horizon_waits_for_live_sources_only() -> None:
    box = Inbox(["weight", "camera"])
    assert box.horizon() is None
    box.put_changes([WeightChange(0, -100.0, -1, 1.0, 2.0, 0.9)], 5.0)
    assert box.horizon() is None  # the camera has said nothing yet
    box.put_presences([Presence("bay", 0.5, 1.5, 1.0, 0.4, 0)], 3.0, bay_since=2.5)
    assert box.horizon() == 3.0
    box.set_up("camera", False)
    assert box.horizon() == 5.0  # a camera that is down does not hold weight back
    box.set_up("camera", True)
    box.finish("camera")
    assert box.horizon() == 5.0
    taken = box.take(2.0)
    assert [i[0] for i in taken] == [1.5, 2.0] and isinstance(taken[0][2], Presence)
    assert box.pending() == 0
    assert box.occupied_since(2.9) is None and box.occupied_since(3.0) == 2.5


def test_pace_maps_simulated_time_to_wall_time() -> None:
    now = [100.0]
    pace = Pace(10.0, origin=50.0, clock=lambda: now[0])
    assert pace.delay(40.0) == 0.0  # before the origin: catching up, no waiting
    assert pace.delay(60.0) == pytest.approx(1.0)
    now[0] = 100.5
    assert pace.delay(60.0) == pytest.approx(0.5)
    assert Pace(0.0).delay(1e9) == 0.0
    with pytest.raises(ValueError):
        Pace(-1.0)


def test_pace_starts_when_every_worker_has_caught_up() -> None:
    now = [100.0]
    pace = Pace(10.0, origin=50.0, parties=["weight", "camera"], clock=lambda: now[0])
    assert pace.delay(55.0, "weight") == Pace.HOLD_S  # past the origin first: waits
    now[0] = 130.0  # the camera replays for 30 s meanwhile, unpaced
    assert pace.delay(49.0, "camera") == 0.0
    assert pace.delay(55.0, "weight") == Pace.HOLD_S
    assert pace.delay(51.0, "camera") == pytest.approx(0.1)  # now both: the clock starts
    assert pace.delay(55.0, "weight") == pytest.approx(0.5)  # 5 s of the store, not 35
    stuck = Pace(
        10.0, origin=50.0, parties=["weight", "camera"], max_hold_s=20.0, clock=lambda: now[0]
    )
    assert stuck.delay(60.0, "weight") == Pace.HOLD_S
    now[0] = 151.0  # the camera never comes: the weight goes on after max_hold_s
    assert stuck.delay(60.0, "weight") == pytest.approx(1.0)


class FlakySource(FrameSource):
    """Fails to open the first time, then gives frames and drops out after a few."""

    opens = 0
    t = 0.0

    def __init__(self, drop_after: int) -> None:
        super().__init__(width=64, height=48)
        self.drop_after = drop_after
        self.n = 0

    def open(self) -> None:
        FlakySource.opens += 1
        if FlakySource.opens == 1:
            raise CameraDisconnectedError("no device yet")

    def read(self) -> Frame | None:
        self.n += 1
        if self.n > self.drop_after:
            raise CameraDisconnectedError("cable pulled")
        FlakySource.t += 0.1
        return Frame(np.full((48, 64), 90, np.uint8), FlakySource.t)


def feed(factory, box: Inbox, health: Health, stop: threading.Event) -> CameraFeed:
    cfg = _camera_cfg()
    worker = CameraWorker.from_config(cfg, factory, sleep=lambda s: stop.wait(s) and None)
    return CameraFeed(worker, box, health=health)


def test_camera_faults_are_reported_and_the_camera_comes_back() -> None:
    FlakySource.opens = 0
    health = Health()
    box = Inbox(["weight", "camera"])
    stop = threading.Event()
    f = feed(lambda: FlakySource(drop_after=15), box, health, stop)
    th = threading.Thread(target=f.run, args=(stop,))
    th.start()
    try:
        wait_until(lambda: FlakySource.opens >= 3 and f.frames >= 20)
        assert th.is_alive()
        cam = health.get("camera")
        assert cam["failures"] >= 2 and "camera" in health.snapshot()["components"]
        assert box.progress["camera"] > 0  # frames moved the camera's sensor time on
    finally:
        stop.set()
        th.join(5)
    assert not th.is_alive()


def test_a_camera_that_never_works_leaves_the_horizon_to_weight() -> None:
    class Broken(FrameSource):
        def read(self) -> Frame | None:
            raise ZeroDivisionError("a bug in a driver")

    health = Health()
    box = Inbox(["weight", "camera"])
    box.put_changes([], 12.0)
    stop = threading.Event()
    f = feed(lambda: Broken(width=64, height=48), box, health, stop)
    th = threading.Thread(target=f.run, args=(stop,))
    th.start()
    wait_until(lambda: health.alarmed("camera_down") and health.get("camera")["failures"] >= 2)
    assert box.up["camera"] is False and box.horizon() == 12.0
    assert not health.snapshot()["components"]["camera"]["ok"]
    stop.set()
    th.join(5)
    assert not th.is_alive()


def _camera_cfg():
    from edge.camera.config import CameraConfig

    return CameraConfig.model_validate(
        {
            "width": 64,
            "height": 48,
            "process_scale": 2,
            "warmup_frames": 0,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.02,
        }
    )


def _window(changes: tuple[WeightChange, ...], presence: Presence | None) -> EventWindow:
    return EventWindow("bay-1", 1, 0.0, 5.0, 12, presence, changes=changes)


def test_weight_only_decider_labels_by_sign_and_size() -> None:
    w = _window(
        (
            WeightChange(0, -200.0, -2, 0, 1, 0.9),
            WeightChange(0, 100.0, 1, 2, 3, 0.8),
            WeightChange(1, 500.0, 5, 4, 5, 0.7),
            WeightChange(1, 20.0, 0, 4, 5, 0.3),
        ),
        None,
    )
    (d,) = WeightOnlyDecider().decide([w])
    assert d.interest is None
    assert d.stock == (("removal", 0.9), ("return", 0.8), ("restock", 0.7), ("none", 0.3))


def test_rules_decide_interest_only_with_someone_there() -> None:
    p = Presence("bay", 0.0, 8.0, 8.0, 0.5, 0)
    take, lone = RulesDecider().decide(
        [
            _window((WeightChange(0, -100.0, -1, 1, 3, 0.9),), p),
            _window((WeightChange(0, -100.0, -1, 1, 3, 0.9),), None),
        ]
    )
    assert take.interest == "take" and take.stock == (("removal", 0.9),)
    assert lone.interest is None


def test_bundle_that_does_not_verify_leaves_the_rules_deciding(tmp_path: Path) -> None:
    health = Health()
    assert (
        build_decider(ModelConfig(bundle_dir=tmp_path / "none"), health=health).decided_by
        == "rules"
    )
    bad = tmp_path / "bundle"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    d = build_decider(ModelConfig(bundle_dir=bad), health=health)
    assert d.decided_by == "rules" and d.model_version is None
    assert health.alarmed("model_refused")


def test_decision_worker_commits_windows_and_skips_replayed_ones(tmp_path: Path) -> None:
    def run(skip: int) -> tuple[list[dict], StockBook]:
        box = Inbox(["weight", "camera"])
        book = StockBook(slots(), {0: 5, 1: 5})
        got: list[dict] = []
        worker = DecisionWorker(
            box,
            Windower("bay-1", {0: 100.0, 1: 100.0}, initial_units=book.units),
            RulesDecider(),
            book,
            Origin("s", "bay-1", {0: "SKU-0", 1: "SKU-1"}),
            lambda evs: got.extend(evs) or list(evs),
            health=Health(),
            tick_s=0.5,
            skip_through=skip,
            stock_file=tmp_path / f"stock-{skip}.json",
        )
        box.put_presences([Presence("bay", 1.0, 9.0, 8.0, 0.5, 0)], 10.0)
        box.put_presences([Presence("bay", 30.0, 38.0, 8.0, 0.5, 0)], 40.0)
        box.put_changes(
            [
                WeightChange(0, -200.0, -2, 3.0, 5.0, 0.9),
                WeightChange(1, -100.0, -1, 32.0, 34.0, 0.9),
            ],
            60.3,
        )
        assert worker.step() > 0 or skip
        assert worker.now == 40.0  # horizon 40.0 cut to whole ticks
        worker.step(final=True)
        return got, book

    everything, book = run(0)
    assert [(e["kind"], e["label"], e["episode"]) for e in everything] == [
        ("interest", "take", 1),
        ("stock", "removal", 1),
        ("level", "low", 1),  # 5 - 2 = 3 units: at low_units
        ("interest", "take", 2),
        ("stock", "removal", 2),
    ]
    assert book.units == {0: 3, 1: 4}
    replayed, book2 = run(1)
    assert [e["episode"] for e in replayed] == [2, 2]
    assert book2.units == book.units  # skipped windows are still booked
    saved = load_stock(tmp_path / "stock-1.json", slots())
    assert saved is not None and saved.units == book.units
    save_stock(tmp_path / "x.json", book)
    (tmp_path / "bad.json").write_text("[]")
    assert load_stock(tmp_path / "bad.json", slots()) is None


def test_a_candidate_in_shadow_sees_every_window_and_decides_none() -> None:
    from edge.events import WindowDecision
    from edge.ota.shadow import LatencyLog, ShadowSeat

    class Contrary:
        """A candidate that says the opposite of the rules: its labels must never appear."""

        seen = 0

        def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
            self.seen += len(windows)
            return [WindowDecision("pass_by", 0.9, (("restock", 0.9),)) for _ in windows]

    box = Inbox(["weight", "camera"])
    book = StockBook(slots(), {0: 5, 1: 5})
    got: list[dict] = []
    seat, latency, candidate = ShadowSeat(), LatencyLog(), Contrary()
    seat.seat(2, candidate)
    worker = DecisionWorker(
        box,
        Windower("bay-1", {0: 100.0, 1: 100.0}, initial_units=book.units),
        RulesDecider(),
        book,
        Origin("s", "bay-1", {0: "SKU-0", 1: "SKU-1"}),
        lambda evs: got.extend(evs) or list(evs),
        health=Health(),
        tick_s=0.5,
        shadow=seat,
        latency=latency,
    )
    box.put_presences([Presence("bay", 1.0, 9.0, 8.0, 0.5, 0)], 10.0)
    box.put_presences([Presence("bay", 30.0, 38.0, 8.0, 0.5, 0)], 40.0)
    box.put_changes(
        [WeightChange(0, -200.0, -2, 3.0, 5.0, 0.9), WeightChange(1, -100.0, -1, 32.0, 34.0, 0.9)],
        60.3,
    )
    worker.step()
    worker.step(final=True)
    decided = [e for e in got if e["kind"] in ("interest", "stock")]
    assert [(e["kind"], e["label"]) for e in decided] == [
        ("interest", "take"),
        ("stock", "removal"),
        ("interest", "take"),
        ("stock", "removal"),
    ]  # the rules' decisions, once each; the candidate's only beside them
    assert [e["shadow"] for e in decided] == [
        {"version": 2, "label": "pass_by"},
        {"version": 2, "label": "restock"},
    ] * 2  # for scoring against labels that arrive later
    assert all("shadow" not in e for e in got if e["kind"] == "level")
    assert candidate.seen == worker.windows == 2
    figures = seat.result()
    assert figures.windows == 2 and figures.agreement == {"interest": 0.0, "stock": 0.0}
    assert latency.median(None)[1] == 2  # the rules' per-window times, for the OTA watch
