"""The decision worker counts from the scale: level reports, recounts, labels that cannot move counts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import SlotConfig
from edge.events import Origin, WindowDecision
from edge.health import Health
from edge.recount import parse_recount, request_recount, take_recounts
from edge.stock import StockBook
from edge.windows import Windower
from edge.workers.decide import RulesDecider
from edge.workers.decision import DecisionWorker, LevelReports
from edge.workers.timeline import Inbox
from models.types import Presence, WeightChange
from models.window import EventWindow
from models.wire import Decider

UG = 100.0
SKUS = {0: "SKU-0", 1: "SKU-1", 2: "SKU-2"}


def slots() -> list[SlotConfig]:
    return [
        SlotConfig.model_validate(
            {"slot": n, "channel": n, "sku": sku, "unit_grams": UG, "capacity": 12}
        )
        for n, sku in SKUS.items()
    ]


class AlwaysRemoval:
    """A decider that calls every change a removal (a model gone wrong)."""

    decided_by: Decider = "model"
    model_version: int | None = 7

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        return [
            WindowDecision(None, 0.0, tuple(("removal", 0.9) for _ in w.changes)) for w in windows
        ]


def worker(
    box: Inbox,
    got: list[dict[str, Any]],
    *,
    decider: Any = None,
    every_s: float = 900.0,
    after: float = -1.0,
    data_dir: Path | None = None,
    health: Health | None = None,
) -> DecisionWorker:
    book = StockBook(slots())
    return DecisionWorker(
        box,
        Windower("bay-1", {n: UG for n in SKUS}),
        decider or RulesDecider(),
        book,
        Origin("store-1", "bay-1", SKUS),
        lambda evs: got.extend(evs) or list(evs),
        health=health or Health(),
        tick_s=0.5,
        reports=LevelReports(every_s, after=after),
        resume_t=after,
        recount_dir=data_dir,
    )


def loads(box: Inbox, t: float, grams: dict[int, float]) -> None:
    box.put_levels(t, grams)


def test_start_report_names_every_slot_then_periodic_reports(tmp_path: Path) -> None:
    box = Inbox(["weight"])
    got: list[dict[str, Any]] = []
    w = worker(box, got, every_s=60.0)
    loads(box, 1.0, {0: 8 * UG + 3.0, 1: 5 * UG - 4.0, 2: 0.0})
    box.put_changes([], 1.0)
    w.step()
    assert [(e["kind"], e["slot"], e["label"], e["stock_units"]) for e in got] == [
        ("level", 0, "ok", 8),
        ("level", 1, "ok", 5),
        ("level", 2, "out", 0),
    ]
    assert {e["features"]["report"] for e in got} == {"start"}
    got.clear()
    for t in range(10, 140, 10):  # two minutes of a quiet bay, a load snapshot every 10 s
        loads(box, float(t), {0: 8 * UG, 1: 5 * UG, 2: 0.0})
        box.put_changes([], float(t))
        w.step()
    reports = [e["mono_time"] for e in got if e["features"].get("report") == "periodic"]
    assert reports == [60.0] * 3 + [120.0] * 3  # at every whole minute after the start


def test_a_plus_six_change_is_a_restock_and_the_count_goes_up() -> None:
    for decider, label in ((RulesDecider(), "restock"), (AlwaysRemoval(), "removal")):
        box = Inbox(["weight", "camera"])
        got: list[dict[str, Any]] = []
        w = worker(box, got, decider=decider)
        loads(box, 1.0, {0: 6 * UG, 1: 5 * UG, 2: 5 * UG})
        box.put_changes([], 1.0)
        box.put_presences([], 1.0)
        w.step()
        change = WeightChange(0, 6 * UG + 2.0, 6, 20.0, 22.0, 0.9, level_g=12 * UG + 2.0)
        box.put_presences([Presence("bay", 18.0, 26.0, 8.0, 0.5, 1)], 60.0)  # staff at the bay
        box.put_changes([change], 60.0)
        w.step()
        stock = [e for e in got if e["kind"] == "stock"]
        assert [(e["label"], e["units"], e["stock_units"]) for e in stock] == [(label, 6, 12)]
        assert w.book.units[0] == 12


def test_a_restarted_unit_replays_without_reports_then_reports_at_its_start() -> None:
    box = Inbox(["weight"])
    got: list[dict[str, Any]] = []
    w = worker(box, got, after=30.0)  # the buffer already holds the day up to t=30
    for t in (1.0, 10.0, 20.0, 30.0, 40.0):
        loads(box, t, {0: 3 * UG, 1: 4 * UG, 2: 5 * UG})
        box.put_changes([], t)
        w.step()
    assert [(e["slot"], e["mono_time"], e["features"]["report"]) for e in got] == [
        (0, 30.5, "start"),
        (1, 30.5, "start"),
        (2, 30.5, "start"),
    ]


def test_a_staff_recount_resets_the_slot_and_says_so(tmp_path: Path) -> None:
    box = Inbox(["weight", "camera"])
    got: list[dict[str, Any]] = []
    health = Health()
    w = worker(box, got, data_dir=tmp_path, health=health)
    loads(box, 1.0, {0: 5 * UG + 250.0, 1: 5 * UG, 2: 5 * UG})  # a foreign 250 g item on slot 0
    box.put_changes([], 1.0)
    box.put_presences([], 1.0)
    w.step()
    assert w.book.units[0] == 8  # the scale alone cannot tell: 7.5 units round up
    got.clear()
    request_recount(tmp_path, 0, 5)
    request_recount(tmp_path, 9, 1)  # no such slot on this bay
    (tmp_path / "recounts" / "zz-bad.json").write_text('{"slot": 0, "units": -3}')
    w.step()
    assert [(e["kind"], e["slot"], e["stock_units"], e["features"]["report"]) for e in got] == [
        ("level", 0, 5, "recount")
    ]
    assert health.counter("recounts") == 1 and health.counter("recounts_refused") == 1
    assert (tmp_path / "recounts" / "zz-bad.bad").exists()
    assert take_recounts(tmp_path) == []
    # the next change counts from the staff's figure
    box.put_presences([Presence("bay", 18.0, 26.0, 8.0, 0.5, 1)], 60.0)  # a shopper takes one
    box.put_changes([WeightChange(0, -UG, -1, 20.0, 22.0, 0.9, level_g=4 * UG + 250.0)], 60.0)
    w.step()
    assert w.book.units[0] == 4


def test_implausible_loads_raise_an_alarm_and_flag_the_event(tmp_path: Path) -> None:
    box = Inbox(["weight"])
    got: list[dict[str, Any]] = []
    health = Health()
    w = worker(box, got, health=health)
    loads(box, 1.0, {0: -4 * UG, 1: 5 * UG, 2: 5 * UG})  # a tare taken with four units on
    box.put_changes([], 1.0)
    w.step()
    first = next(e for e in got if e["slot"] == 0)
    assert first["stock_units"] == 0 and first["features"]["flags"] == "below_tare"
    assert health.alarmed("stock_implausible")
    assert health.get("stock_flags") == {"0": ["below_tare"]}


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b'{"slot": 64, "units": 1}', b'{"slot": 1, "units": true}', b"x" * 2000],
)
def test_bad_recount_requests_are_refused_with_the_reason(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"req\.json"):
        parse_recount(raw, where="req.json")


@given(st.binary(max_size=300) | st.from_regex(r'\{"slot": -?\d{1,3}, "units": -?\d{1,7}\}'))
def test_any_request_file_is_a_valid_recount_or_a_named_refusal(raw: bytes | str) -> None:
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        r = parse_recount(data, where="f.json")
    except ValueError as err:
        assert str(err).startswith("f.json: ")
    else:
        assert 0 <= r.slot <= 63 and 0 <= r.units <= 100_000
