"""The demo's truth column and closing tables, on a constructed day."""

from __future__ import annotations

from firmware_bridge.sim.truth import Episode, TruthChange, ZoneVisit
from firmware_bridge.sim.twin import SimRun
from shelfsense.demo_truth import TruthView, summary_lines


def _run() -> SimRun:
    run = SimRun("constructed", 1, 600.0)
    run.initial_units = {0: 6, 1: 4}
    restock = TruthChange(0, 100.0, 106.0, 900.0, 6, "restock", 1, "CRISPS-150")
    take = TruthChange(1, 200.0, 203.0, -60.0, -1, "removal", 2, "SPICE-60")
    run.changes = [restock, take]
    run.episodes = [
        Episode(1, "staff", 98.0, 110.0, "restock", 0, (restock,)),
        Episode(2, "shopper", 195.0, 206.0, "take", 1, (take,)),
        Episode(3, "shopper", 300.0, 305.0, "glance", None),
    ]
    run.visits = [ZoneVisit(2, "slot-1", 199.0, 204.0, 0.8, "take")]
    run.final_units = {0: 12, 1: 3}
    return run


def _ev(kind: str, label: str, t: float, **kw: object) -> dict[str, object]:
    return {"kind": kind, "label": label, "mono_time": t, **kw}


def test_truth_beside_each_event_and_the_score() -> None:
    view = TruthView(_run(), {0: "CRISPS-150", 1: "SPICE-60"})
    plus_six = _ev("stock", "removal", 107.0, slot=0, units=6, grams=901.0)
    assert view.beside(plus_six) == "truth: restock +6, 12 on the slot"
    take = _ev("stock", "removal", 204.0, slot=1, units=-1, grams=-59.0)
    assert view.beside(take) == "truth: removal -1, 3 on the slot"
    assert view.beside(_ev("level", "ok", 400.0, slot=0)) == "truth: 12 on the slot"
    seen = _ev("interest", "take", 206.0, dwell_s=11.0, episode=4)
    assert view.beside(seen) == "truth: shopper take"
    assert view.beside(_ev("interest", "browse", 305.0, dwell_s=5.0, episode=5)) == (
        "truth: shopper glance"
    )
    s = view.score
    assert (s.right["stock"], s.total["stock"]) == (1, 2)
    assert (s.right["interest"], s.total["interest"]) == (1, 2)

    lines = summary_lines(
        view,
        [{"sku": "CRISPS-150", "stock_units": 12}, {"sku": "SPICE-60", "stock_units": 4}],
        [{"sku": "SPICE-60", "counts": {"take": 1}}],
    )
    text = "\n".join(lines)
    assert "stock    labels right: 1/2 (50 %)" in text
    assert "most often wrong: restock→removal ×1" in text
    assert "against the truth: 1/2 SKUs agree" in text
    assert "SPICE-60            4      3  ≠" in text
    assert "SPICE-60          0/0       0/0       0/0       0/0       1/1" in text
