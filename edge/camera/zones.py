"""Camera zones: named polygons in normalised coordinates, checked and rasterised.

Workflow: :func:`validate_polygon` refuses a polygon outside the unit square or
crossing itself (naming the zone); :func:`default_layout` gives ``bay`` across the
lower part of the frame and ``slot-0..N-1`` columns above it; :class:`ZoneSet`
rasterises the polygons to boolean masks with numpy (no OpenCV on the Pi) at the
resolution detection works on, and turns a foreground mask into per-zone fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.camera.errors import ZoneError

Point = tuple[float, float]

_EPS = 1e-12


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return (
        min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS
        and min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when the closed segments p1-p2 and q1-q2 share at least one point."""
    d1 = _orient(q1, q2, p1)
    d2 = _orient(q1, q2, p2)
    d3 = _orient(p1, p2, q1)
    d4 = _orient(p1, p2, q2)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    return (
        (abs(d1) <= _EPS and _on_segment(q1, q2, p1))
        or (abs(d2) <= _EPS and _on_segment(q1, q2, p2))
        or (abs(d3) <= _EPS and _on_segment(p1, p2, q1))
        or (abs(d4) <= _EPS and _on_segment(p1, p2, q2))
    )


def polygon_area(polygon: Sequence[Point]) -> float:
    """Unsigned area of a simple polygon (shoelace formula)."""
    pts = np.asarray(polygon, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def validate_polygon(name: str, polygon: Sequence[Point]) -> None:
    """Refuse a zone polygon that is out of bounds, degenerate or self-intersecting.

    Raises :class:`ZoneError` (a :class:`edge.errors.ConfigError`) naming ``name``.
    """
    pts = [(float(x), float(y)) for x, y in polygon]
    if len(pts) < 3:
        raise ZoneError(f"zone '{name}': a polygon needs at least 3 points, got {len(pts)}")
    for i, (x, y) in enumerate(pts):
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ZoneError(f"zone '{name}': point {i} is not a finite number")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ZoneError(
                f"zone '{name}': point {i} ({x:g}, {y:g}) is outside the frame [0, 1] x [0, 1]"
            )
    n = len(pts)
    for i in range(n):
        if pts[i] == pts[(i + 1) % n]:
            raise ZoneError(f"zone '{name}': points {i} and {(i + 1) % n} are the same")
    for i in range(n):
        a1, a2 = pts[i], pts[(i + 1) % n]
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbouring edges share a vertex by construction
            b1, b2 = pts[j], pts[(j + 1) % n]
            if segments_intersect(a1, a2, b1, b2):
                raise ZoneError(f"zone '{name}': edges {i} and {j} cross (self-intersecting)")
    if polygon_area(pts) < 1e-6:
        raise ZoneError(f"zone '{name}': the polygon has no area")


def rasterise(polygon: Sequence[Point], width: int, height: int) -> npt.NDArray[np.bool_]:
    """Boolean mask (height x width) of the pixels whose centres lie inside ``polygon``."""
    px = (np.arange(width, dtype=np.float64) + 0.5) / width
    py = (np.arange(height, dtype=np.float64) + 0.5) / height
    gx = px[None, :]
    gy = py[:, None]
    inside = np.zeros((height, width), dtype=np.bool_)
    pts = [(float(x), float(y)) for x, y in polygon]
    n = len(pts)
    for i in range(n):
        x1, y1 = pts[i]
        x2, y2 = pts[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > gy) != (y2 > gy)  # rows whose centre line the edge crosses
        x_at = x1 + (gy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (gx < x_at)
    return inside


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A checked zone: its name, polygon and (optional) own hysteresis thresholds."""

    name: str
    polygon: tuple[Point, ...]
    enter_fraction: float | None = None
    leave_fraction: float | None = None

    def __post_init__(self) -> None:
        validate_polygon(self.name, self.polygon)


def default_layout(slots: int) -> list[ZoneSpec]:
    """``bay`` over the lower part of the frame and ``slot-0..slots-1`` columns above it."""
    if slots < 1:
        raise ZoneError(f"the default layout needs at least one slot, got {slots}")
    zones = [ZoneSpec("bay", ((0.02, 0.62), (0.98, 0.62), (0.98, 0.98), (0.02, 0.98)))]
    left, right, top, bottom = 0.04, 0.96, 0.06, 0.50
    step = (right - left) / slots
    gap = min(0.01, step * 0.1)
    for n in range(slots):
        x0 = left + n * step + gap
        x1 = left + (n + 1) * step - gap
        zones.append(ZoneSpec(f"slot-{n}", ((x0, top), (x1, top), (x1, bottom), (x0, bottom))))
    return zones


class ZoneSet:
    """Zones rasterised at one resolution, ready to measure masks per zone.

    ``fractions(mask)`` gives, per zone, the share of its pixels set in ``mask``
    with one matrix product, so measuring many zones costs about one pass.
    """

    def __init__(self, zones: Sequence[ZoneSpec], width: int, height: int) -> None:
        if not zones:
            raise ZoneError("at least one camera zone is needed")
        names = [z.name for z in zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ZoneError(f"zone '{dupes[0]}' is configured twice")
        self.zones = tuple(zones)
        self.names = tuple(names)
        self.width = width
        self.height = height
        masks = np.stack([rasterise(z.polygon, width, height) for z in zones])
        areas = masks.reshape(len(zones), -1).sum(axis=1)
        for z, area in zip(zones, areas, strict=True):
            if area == 0:
                raise ZoneError(
                    f"zone '{z.name}' covers no pixel at {width}x{height}; make it larger"
                )
        self.masks: npt.NDArray[np.bool_] = masks
        self.areas: npt.NDArray[np.int64] = areas.astype(np.int64)
        weights = masks.reshape(len(zones), -1).T.astype(np.float32)
        self._weights = weights / areas.astype(np.float32)[None, :]

    def fractions(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-zone mean of a float (height x width) array, e.g. a 0/1 foreground mask."""
        flat = values.reshape(-1)
        out: npt.NDArray[np.float32] = flat @ self._weights
        return out

    def __len__(self) -> int:
        return len(self.zones)
