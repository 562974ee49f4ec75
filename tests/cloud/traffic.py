"""Synthetic fleet traffic for the cloud benches and tests: seeded, like a store chain's events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from models.wire import ShelfEvent

INTEREST = ("pass_by", "pass_by", "pass_by", "glance", "glance", "browse", "touch", "take")
STOCK = ("removal", "removal", "removal", "return", "restock", "misplaced", "none")


def window(
    rng: random.Random, bay: str, slot: int, t_end: float, dwell: float, hour: int
) -> dict[str, Any]:
    """A window like a unit's: the bay presence, a reach, a change, the slot's context."""
    t0 = t_end - dwell
    motion = round(rng.random(), 3)
    reach = {"zone": f"slot-{slot}", "t_enter": t0 + 0.5, "t_leave": t0 + 1.5, "dwell": 1.0}
    return {
        "bay": bay,
        "episode": int(t_end),
        "t_start": t0,
        "t_end": t_end,
        "hour": hour,
        "presence": {
            "zone": "bay",
            "t_enter": t0,
            "t_leave": t_end,
            "dwell": dwell,
            "peak_motion": motion,
            "entries": 1,
        },
        "reaches": [{**reach, "peak_motion": motion, "entries": 1}],
        "changes": [
            {
                "slot": slot,
                "grams": -410.3,
                "units": -1,
                "t_start": t0 + 0.8,
                "t_settled": t0 + 1.9,
                "confidence": 0.93,
            }
        ],
        "slots": [
            {
                "slot": slot,
                "unit_grams": 410.0,
                "recent_changes": rng.randrange(4),
                "since_last_s": 30.0,
                "stock_units": 12,
            }
        ],
        "neighbours": rng.randrange(3),
    }


def fleet_shape(stores: int, bays: int, slots: int) -> list[tuple[str, str, str]]:
    """(device, store, bay) for every unit of the chain."""
    return [
        (f"u{s:03d}-{b:02d}", f"store-{s:03d}", f"bay-{b:02d}")
        for s in range(stores)
        for b in range(bays)
    ]


def events(
    n: int,
    *,
    seed: int = 1,
    stores: int = 20,
    bays: int = 10,
    slots: int = 8,
    n_skus: int = 400,
    span: timedelta = timedelta(days=20),
    end: datetime | None = None,
    device_prefix: str = "",
    windows: bool = False,
    episodes: bool = False,
) -> Iterator[ShelfEvent]:
    """``n`` events spread over the fleet and ``span`` up to ``end``, seqs 1.. per device.

    ``windows``: interest events carry the window they were decided on, as units send it.
    ``episodes``: interest events carry an episode as a unit's do, one to three events
    (slots) per episode with its label and dwell; otherwise none (each its own episode).
    """
    rng = random.Random(seed)
    units = fleet_shape(stores, bays, slots)
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    start = end - span
    step = span / max(n, 1)
    seqs: dict[str, int] = {}
    stock: dict[tuple[str, int], int] = {}
    open_episodes: dict[str, tuple[int, str, float, int]] = {}  # id, label, dwell, events left
    for i in range(n):
        device, store, bay = units[rng.randrange(len(units))]
        device = device_prefix + device
        seq = seqs[device] = seqs.get(device, 0) + 1
        slot = rng.randrange(slots)
        sku = f"SKU-{(int(store[-3:]) * 7 + int(bay[-2:]) * slots + slot) % n_skus:05d}"
        t = start + step * i
        r = rng.random()
        fields: dict[str, Any] = {}
        if r < 0.6:
            kind, label = "interest", rng.choice(INTEREST)
            fields = {"dwell_s": round(rng.expovariate(1 / 8), 2), "slot": slot}
            if episodes:
                ep, label, dwell, left = open_episodes.get(
                    device, (seq, label, fields["dwell_s"], 0)
                )
                if left == 0:  # a new episode, numbered by the seq of its first event
                    ep, label, dwell, left = seq, label, fields["dwell_s"], rng.randint(1, 3)
                open_episodes[device] = (ep, label, dwell, left - 1)
                fields.update(episode=ep, dwell_s=dwell)
            if windows:
                fields["window"] = window(rng, bay, slot, float(i), fields["dwell_s"], t.hour)
        else:
            kind = "stock" if r < 0.95 else "level"
            label = rng.choice(STOCK) if kind == "stock" else rng.choice(("ok", "ok", "low", "out"))
            level = stock.get((device, slot), 24)
            units_moved = -1 if label == "removal" else (1 if label in ("return", "restock") else 0)
            level = max(0, level + units_moved) if level > 0 or units_moved > 0 else 24
            stock[(device, slot)] = level
            fields = {
                "slot": slot,
                "units": units_moved,
                "grams": units_moved * 410.0,
                "stock_units": level,
            }
        yield ShelfEvent(
            device_id=device,
            seq=seq,
            wall_time=t,
            mono_time=float(i),
            store=store,
            bay=bay,
            sku=sku,
            kind=kind,
            label=label,
            confidence=round(rng.uniform(0.5, 1.0), 3),
            decided_by="model",
            model_version=3,
            features={"peak": round(rng.random(), 3)},
            **fields,
        )
