"""Fields of plausible decisions for outbox tests that need no cloud."""

from __future__ import annotations

from typing import Any


def event_fields(i: int, *, kind: str = "stock") -> dict[str, Any]:
    """Fields of a plausible decision (everything but device_id and seq)."""
    stock = kind == "stock"
    return {
        "wall_time": "2026-03-01T10:00:00Z",
        "mono_time": float(i),
        "store": "store-1",
        "bay": "bay-1",
        "slot": i % 8 if stock else None,
        "sku": f"SKU-{i % 8:06d}" if stock else None,
        "kind": kind,
        "label": "removal" if stock else "browse",
        "confidence": 0.9,
        "units": -1 if stock else None,
        "grams": -412.5 if stock else None,
        "stock_units": 10,
        "episode": i,
        "decided_by": "rules",
        "features": {"dwell": 3.5, "peak": 0.4, "n": i},
    }
