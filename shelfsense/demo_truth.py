"""The twin's truth beside what the demo unit decided and what the cloud answers.

Workflow: :class:`TruthView` is built from the twin's :class:`~firmware_bridge.sim.twin.SimRun`
the demo unit plays. :meth:`TruthView.beside` says, for one event of the feed, what the
twin really did (the change on that slot, the visit at that time, the units really on
the slot); :meth:`TruthView.tally` keeps the score per head as events go by, and
:func:`summary_lines` ends the demo with per-head accuracy, the stock the backend reads
per SKU against the truth, and the interest table the backend would read (per SKU and
class, the twin's count beside it). Pure: values in, lines of text out; the demo loop
does the HTTP.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_bridge.sim.truth import Episode, TruthChange
    from firmware_bridge.sim.twin import SimRun

MATCH_S = 3.0  # a stock event belongs to a truth change that ended within this many seconds
OWN_KINDS = frozenset({"removal", "return", "restock"})
INTEREST = ("pass_by", "glance", "browse", "touch", "take")


@dataclass
class Score:
    """Right and total per head (``stock``, ``interest``), and the confusions seen."""

    right: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    wrong: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # head, truth, said

    def add(self, head: str, truth: str, said: str) -> None:
        self.total[head] += 1
        if truth == said:
            self.right[head] += 1
        else:
            self.wrong[(head, truth, said)] += 1


class TruthView:
    """What the twin did, looked up by slot and sensor time."""

    def __init__(self, run: SimRun, skus: Mapping[int, str]) -> None:
        self.run = run
        self.skus = dict(skus)
        self.score = Score()
        self._free = sorted(run.changes, key=lambda c: c.t_end)
        self._episodes_seen: set[int] = set()

    def units_at(self, slot: int, t: float) -> int:
        """Units of the slot's own SKU on it at sensor time ``t``."""
        n = self.run.initial_units.get(slot, 0)
        for c in self.run.changes:
            if c.slot == slot and c.kind in OWN_KINDS and c.t_end <= t:
                n += c.units
        return n

    def change_for(self, slot: int, t: float, grams: float | None) -> TruthChange | None:
        """The truth change a stock event at ``t`` on ``slot`` saw (each used once)."""
        near = [
            c
            for c in self._free
            if c.slot == slot and c.t_start - MATCH_S <= t <= c.t_end + MATCH_S
        ]
        if not near:
            return None
        best = min(near, key=lambda c: abs(c.grams - (grams or 0.0)))
        self._free.remove(best)
        return best

    def episode_at(self, t0: float, t1: float) -> Episode | None:
        """The twin's visit overlapping ``[t0, t1]`` the most."""
        best, overlap = None, 0.0
        for e in self.run.episodes:
            ov = min(e.t_leave, t1) - max(e.t_enter, t0)
            if ov > overlap:
                best, overlap = e, ov
        return best

    def beside(self, ev: Mapping[str, Any]) -> str:
        """What the twin really did, for one event of the feed (and tally the score)."""
        kind, t = ev["kind"], float(ev["mono_time"])
        if kind == "stock":
            c = self.change_for(int(ev["slot"]), t, ev.get("grams"))
            truth = "none" if c is None and ev.get("units") == 0 else (c.kind if c else "?")
            if truth != "?":
                self.score.add("stock", truth, ev["label"])
            real = self.units_at(int(ev["slot"]), t + MATCH_S)
            what = f"{c.kind} {c.units:+d}" if c else "no stock moved" if truth == "none" else "-"
            return f"truth: {what}, {real} on the slot"
        if kind == "level":
            return f"truth: {self.units_at(int(ev['slot']), t)} on the slot"
        dwell = float(ev.get("dwell_s") or 0.0)
        e = self.episode_at(t - dwell, t)
        if e is None:
            return "truth: nobody"
        episode = ev.get("episode")
        if episode is not None and episode not in self._episodes_seen:
            self._episodes_seen.add(int(episode))
            if e.intent in INTEREST:
                self.score.add("interest", e.intent, ev["label"])
        return f"truth: {e.actor} {e.intent}"

    def stock_skus(self) -> dict[str, int]:
        """Units per SKU at the end of the run."""
        out: dict[str, int] = defaultdict(int)
        for slot, n in self.run.final_units.items():
            out[self.skus.get(slot, f"slot-{slot}")] += n
        return dict(out)

    def interest_skus(self) -> dict[str, Counter[str]]:
        """Shopper visits per SKU they handled or reached, by intent."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for e in self.run.episodes:
            if e.actor != "shopper":
                continue
            slots = {c.slot for c in e.changes} or ({e.slot} if e.slot is not None else set())
            reached = {
                int(v.zone.split("-", 1)[1])
                for v in self.run.visits
                if v.shopper == e.person and v.zone.startswith("slot-")
            }
            for sku in {self.skus.get(s, f"slot-{s}") for s in slots | reached}:
                out[sku][e.intent] += 1
        return dict(out)


def view_of(sensing: Any) -> TruthView | None:
    """The truth of a sim unit's run (``edge.workers.build.Sensing``); None off the simulator."""
    run = getattr(sensing, "run", None)
    if run is None:
        return None
    return TruthView(run, sensing.decisions.origin.skus)


def _pct(right: int, total: int) -> str:
    return f"{right}/{total} ({100.0 * right / total:.0f} %)" if total else "-"


def summary_lines(
    view: TruthView,
    stock: Sequence[Mapping[str, Any]],
    interest: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Per-head accuracy, stock per SKU against the truth, and the interest table.

    ``stock`` is ``/v1/stock/skus``'s ``data``, ``interest`` ``/v1/interest``'s ``data``.
    """
    s = view.score
    out = ["== Truth: what the unit decided against what the twin did"]
    for head in ("stock", "interest"):
        out.append(f"   {head:<8} labels right: {_pct(s.right[head], s.total[head])}")
        top = [(k, n) for k, n in s.wrong.most_common() if k[0] == head][:3]
        if top:
            wrong = ", ".join(f"{t}→{said} ×{n}" for (_, t, said), n in top)
            out.append(f"            most often wrong: {wrong}")
    truth = view.stock_skus()
    cloud = {str(r["sku"]): r.get("stock_units") for r in stock}
    agree = sum(1 for sku, n in truth.items() if cloud.get(sku) == n)
    out.append("")
    out.append(
        f"   stock the backend reads (/v1/stock/skus) against the truth: {agree}/{len(truth)} SKUs agree"
    )
    out.append(f"   {'SKU':<14} {'cloud':>6} {'truth':>6}")
    for sku in sorted(truth):
        got = cloud.get(sku)
        mark = "" if got == truth[sku] else "  ≠"
        out.append(f"   {sku:<14} {'-' if got is None else got:>6} {truth[sku]:>6}{mark}")
    per_sku: dict[str, Counter[str]] = defaultdict(Counter)
    for r in interest:
        per_sku[str(r["sku"])].update({k: int(v) for k, v in dict(r["counts"]).items()})
    true_interest = view.interest_skus()
    out.append("")
    out.append("   interest per SKU the backend reads (/v1/interest), cloud / truth per class")
    out.append(f"   {'SKU':<14} " + " ".join(f"{c:>9}" for c in INTEREST))
    for sku in sorted(set(per_sku) | set(true_interest)):
        got, want = per_sku.get(sku, Counter()), true_interest.get(sku, Counter())
        cells = " ".join(f"{got[c]:>4}/{want[c]:<4}" for c in INTEREST)
        out.append(f"   {sku:<14} {cells}".rstrip())
    return out
