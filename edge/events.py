"""From one decided window to the fields of its :class:`~models.wire.ShelfEvent` s.

Workflow: the decision worker gets a :class:`~models.window.EventWindow` and its
decision (interest of the episode, a stock label and confidence per change), books each
change in the :class:`~edge.stock.StockBook`, and :func:`window_events` writes the
events: when someone was at the bay, one ``interest`` event per slot the episode
concerns (handled or reached, see :mod:`edge.interest`; the bay alone when none,
with ``slot`` left empty), all with the episode's label, one ``stock`` event per
change (signed units and grams as weighed, units on the slot after as the scale counts
them, with the slot's load, foreign grams and any implausible-state flags in
``features``), and a ``level`` event whenever a slot turns ``low``, ``out`` or back to
``ok``. Whether added weight is stock the book judges (see :mod:`edge.stock`): where it
overrules the decided label (an addition booked as a foreign item, or a ``misplaced``
one that is whole own units), the event carries the booked label and ``features``
say what was decided (``decided``) and why (``relabel_reason``: ``fit``, ``moved`` or
``whole``); :func:`level_report` writes the ``level`` events of a periodic report. The first event of a
window carries the window itself (``window``) so the cloud can train on what units
saw; the others follow it with the same ``episode``. Each event's ``decided_by`` names
who decided its head: where the bundle's guard (:mod:`models.guard`) hands a crowded
window's stock to the fitted rules, its stock and level events say ``rules`` while its
interest events may say ``model``. Interest events carry ``shoppers``, the shoppers
the camera saw in the window: 2 or more means the label is the window's, for people
it could not tell apart, never silently one person's. ``device_id`` and
``seq`` are filled in by the buffer when it commits them. Features are a compact
numeric summary of what was sensed; never pixels. Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.interest import concerns
from edge.stock import StockBook
from models.types import WeightChange
from models.window import EventWindow
from models.wire import MAX_SHOPPERS, Decider


@dataclass(frozen=True, slots=True)
class WindowDecision:
    """What decided a window said: interest (``None``: no shopper) and one label per change."""

    interest: str | None
    interest_confidence: float
    stock: tuple[tuple[str, float], ...]
    interest_by: Decider | None = None  # None: whoever decides the window (``Origin``)
    stock_by: Decider | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where events come from and who decided them."""

    store: str
    bay: str
    skus: Mapping[int, str]
    decided_by: Decider = "rules"
    model_version: int | None = None


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def interest_features(w: EventWindow) -> dict[str, float | int]:
    """Summary of the episode: dwell, motion, entries, reaches, changes, activity."""
    p = w.presence
    return {
        "dwell": _r(p.dwell if p else 0.0, 2),
        "peak_motion": _r(p.peak_motion if p else 0.0),
        "entries": p.entries if p else 0,
        "shoppers_seen": w.shoppers_seen,
        "reaches": len(w.reaches),
        "reach_dwell": _r(max((r.dwell for r in w.reaches), default=0.0), 2),
        "changes": len(w.changes),
        "net_units": sum(c.units for c in w.changes),
        "neighbours": w.neighbours,
        "hour": w.hour,
    }


def change_features(w: EventWindow, c: WeightChange) -> dict[str, float | int | bool]:
    """Summary of one change: how it settled, how well it fits whole units, who was there."""
    ctx = w.context(c.slot)
    unit = ctx.unit_grams if ctx else 0.0
    fit = abs(abs(c.grams) / unit - abs(c.units)) if unit > 0 else 1.0
    return {
        "settle_s": _r(c.t_settled - c.t_start, 2),
        "weigh_conf": _r(c.confidence),
        "fit": _r(fit),
        "presence": w.presence is not None,
        "reach": any(r.zone == f"slot-{c.slot}" for r in w.reaches),
        "recent": ctx.recent_changes if ctx else 0,
    }


def _shadow_of(shadow: tuple[int, WindowDecision] | None, label: str | None) -> dict[str, Any]:
    """The ``shadow`` field of an event: the candidate's version and label (none: no field)."""
    if shadow is None or label is None:
        return {}
    return {"shadow": {"version": shadow[0], "label": label}}


def window_events(
    w: EventWindow,
    decision: WindowDecision,
    book: StockBook,
    origin: Origin,
    *,
    wall_time: datetime | None = None,
    shadow: tuple[int, WindowDecision] | None = None,
) -> list[dict[str, Any]]:
    """Event fields of one decided window (books its changes in ``book`` as it goes).

    ``mono_time`` of each event is the sensor time it refers to (window end for
    interest, settle time for a change), on the unit's monotonic or simulated clock.
    ``shadow``: a candidate model's version and its decision on the same window, while
    it runs in shadow; each interest and stock event then carries what the candidate
    said (``shadow``), so labels that arrive later score both models on the same windows.
    """
    if len(decision.stock) != len(w.changes):
        raise ValueError(f"{len(decision.stock)} stock labels for {len(w.changes)} changes")
    wall = (wall_time or datetime.now(UTC)).isoformat()
    base: dict[str, Any] = {
        "wall_time": wall,
        "store": origin.store,
        "bay": origin.bay,
        "episode": w.episode,
        "decided_by": origin.decided_by,
        "model_version": origin.model_version,
    }
    stock_base = {**base, "decided_by": decision.stock_by or origin.decided_by}
    out: list[dict[str, Any]] = []
    if decision.interest is not None and w.presence is not None:
        summary = interest_features(w)
        concerned = concerns(w, origin.skus.keys())
        for k in concerned:
            out.append(
                {
                    **base,
                    "decided_by": decision.interest_by or origin.decided_by,
                    "mono_time": max(0.0, w.t_end),
                    "slot": k.slot,
                    "sku": None if k.slot is None else origin.skus.get(k.slot),
                    "kind": "interest",
                    "label": decision.interest,
                    "confidence": _conf(decision.interest_confidence),
                    "dwell_s": _r(max(0.0, w.presence.dwell), 2),
                    "shoppers": min(w.shoppers_seen, MAX_SHOPPERS),
                    "features": {
                        **summary,
                        "attribution": k.attribution,
                        "slot_reach_dwell": k.reach_dwell,
                        "concerns": len(concerned),
                    },
                    **_shadow_of(shadow, shadow[1].interest if shadow else None),
                }
            )
    candidate = shadow[1].stock if shadow and len(shadow[1].stock) == len(w.changes) else None
    for i, (c, (label, conf)) in enumerate(zip(w.changes, decision.stock, strict=True)):
        upd = book.apply(c.slot, label, c.units, grams=c.grams, level_g=c.level_g, t=c.t_settled)
        load = book.features(c.slot) if c.slot in book.state else {}
        if upd.relabelled is not None:  # the book found the addition is not stock
            label = upd.label or label
            load = {**load, "decided": upd.relabelled, "relabel_reason": upd.reason or ""}
        out.append(
            {
                **stock_base,
                "mono_time": max(0.0, c.t_settled),
                "slot": c.slot,
                "sku": origin.skus.get(c.slot),
                "kind": "stock",
                "label": label,
                "confidence": _conf(conf),
                "units": c.units,
                "grams": _r(c.grams, 1),
                "stock_units": upd.units,
                "features": {**change_features(w, c), **load},
                **_shadow_of(shadow, candidate[i][0] if candidate else None),
            }
        )
        if upd.level is not None:
            lv = upd.level
            out.append(
                {
                    **stock_base,
                    "mono_time": max(0.0, c.t_settled),
                    "slot": lv.slot,
                    "sku": lv.sku,
                    "kind": "level",
                    "label": lv.level,
                    "confidence": _conf(conf),
                    "stock_units": lv.units,
                    "features": {"previous": lv.previous, **load},
                }
            )
    if out:
        out[0]["window"] = w.to_dict()
    return out


def level_report(
    book: StockBook,
    origin: Origin,
    *,
    reason: str,
    mono_time: float,
    wall_time: datetime | None = None,
    skip: Collection[int] = (),
) -> list[dict[str, Any]]:
    """One ``level`` event per slot whose count is known: what the scale says is there.

    ``reason`` (``start``, ``periodic``, ``recount``) goes into ``features.report``, so
    a reader of the feed tells a report from a level that moved. Slots in ``skip`` (a
    change on them is still being decided) are left out: that change's event brings
    their figure.
    """
    wall = (wall_time or datetime.now(UTC)).isoformat()
    out: list[dict[str, Any]] = []
    for slot, st in sorted(book.state.items()):
        if st.units is None or st.level is None or slot in skip:
            continue
        out.append(
            {
                "wall_time": wall,
                "mono_time": max(0.0, mono_time),
                "store": origin.store,
                "bay": origin.bay,
                "slot": slot,
                "sku": origin.skus.get(slot),
                "kind": "level",
                "label": st.level,
                "confidence": 1.0,
                "stock_units": st.units,
                "decided_by": origin.decided_by,
                "model_version": origin.model_version,
                "features": {"report": reason, **book.features(slot)},
            }
        )
    return out


def _conf(x: float) -> float:
    return min(1.0, max(0.0, round(float(x), 4)))
