"""Drawing primitives of the simulated camera: zone boxes, soft ellipses, printed cards.

:class:`~edge.camera.sim.SimulatedSource` draws people, hands and shadows as soft-edged
ellipses (:func:`soft_ellipse`, :func:`shade`) inside the pixel boxes of the bay's zones
(:func:`zone_box`); :func:`qr_card` is a card a person holds up to the camera.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from edge.camera.zones import ZoneSpec

F32 = npt.NDArray[np.float32]


def zone_box(zone: ZoneSpec, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel bounding box (y0, y1, x0, x1) of a zone polygon."""
    xs = [p[0] for p in zone.polygon]
    ys = [p[1] for p in zone.polygon]
    return (
        int(min(ys) * height),
        math.ceil(max(ys) * height),
        int(min(xs) * width),
        math.ceil(max(xs) * width),
    )


def soft_ellipse(
    xs: F32, ys: F32, cx: float, cy: float, rx: float, ry: float, *, soft: float
) -> tuple[slice, slice, F32] | None:
    """A soft-edged ellipse on the pixel grid ``xs`` x ``ys``: the bounding slices and the
    coverage (0..1) inside them; None when it is too small or off the image."""
    if rx < 0.5 or ry < 0.5:
        return None
    pad = soft
    x0 = max(int(cx - rx - pad), 0)
    x1 = min(int(cx + rx + pad) + 1, len(xs))
    y0 = max(int(cy - ry - pad), 0)
    y1 = min(int(cy + ry + pad) + 1, len(ys))
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (xs[x0:x1] - cx) / rx
    dy = (ys[y0:y1] - cy) / ry
    d = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    edge = (1.0 - d) * (min(rx, ry) / max(soft, 1e-3)) + 0.5
    alpha = np.clip(edge, 0.0, 1.0).astype(np.float32)
    return slice(y0, y1), slice(x0, x1), alpha


def shade(img: F32, xs: F32, ys: F32, cx: float, cy: float, rx: float, ry: float, k: float) -> None:
    """Darken ``img`` in place by ``k`` under a soft ellipse (a shadow)."""
    cut = soft_ellipse(xs, ys, cx, cy, rx, ry, soft=0.45 * min(rx, ry))
    if cut is None:
        return
    sy, sx, alpha = cut
    img[sy, sx] *= 1.0 - k * alpha


def qr_card(text: str, *, module_px: int = 3, border: int = 4) -> npt.NDArray[np.uint8]:
    """A printed card with ``text`` as a QR code (dark modules on white), for
    :meth:`edge.camera.sim.SimulatedSource.hold_up`.

    Needs the ``segno`` package (the one ``fleet claim-codes create`` draws with).
    """
    try:
        import segno
    except ImportError:
        raise RuntimeError("drawing a QR card needs the segno package: pip install segno") from None
    modules = np.array(segno.make(text, error="m").matrix, dtype=bool)
    cells = np.kron(modules, np.ones((module_px, module_px), dtype=bool))
    card = np.where(cells, 25, 230).astype(np.uint8)
    return np.pad(card, border * module_px, constant_values=230)
