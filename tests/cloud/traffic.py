"""Synthetic fleet traffic for the cloud benches and tests: seeded, like a store chain's events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from models.wire import ShelfEvent

INTEREST = ("pass_by", "pass_by", "pass_by", "glance", "glance", "browse", "touch", "take")
STOCK = ("removal", "removal", "removal", "return", "restock", "misplaced", "none")


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
) -> Iterator[ShelfEvent]:
    """``n`` events spread over the fleet and ``span`` up to ``end``, seqs 1.. per device."""
    rng = random.Random(seed)
    units = fleet_shape(stores, bays, slots)
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    start = end - span
    step = span / max(n, 1)
    seqs: dict[str, int] = {}
    stock: dict[tuple[str, int], int] = {}
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
