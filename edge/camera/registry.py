"""The explicit registry of frame sources: ``camera.source`` key -> class.

No discovery: a source that fails to import is an error where it is chosen, not
a silent skip. Sources that need an optional library (Picamera2, OpenCV) import
it only when opened, so the registry itself imports on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edge.camera.errors import CameraUnavailableError
from edge.camera.opencv import OpenCVSource
from edge.camera.picamera import Picamera2Source
from edge.camera.sim import SimulatedSource
from edge.camera.source import FrameSource

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig
    from edge.camera.zones import ZoneSpec
    from firmware_bridge.sim.truth import ZoneVisit

SOURCES: dict[str, type[FrameSource]] = {
    "picamera2": Picamera2Source,
    "opencv": OpenCVSource,
    "sim": SimulatedSource,
}


def make_source(
    cfg: CameraConfig,
    *,
    visits: Sequence[ZoneVisit] = (),
    zones: Sequence[ZoneSpec] | None = None,
) -> FrameSource:
    """The frame source ``cfg.source`` names, built from the config (not yet opened)."""
    try:
        cls = SOURCES[cfg.source]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise CameraUnavailableError(
            f"unknown camera source {cfg.source!r}; known: {known}"
        ) from None
    return cls.from_config(cfg, visits=visits, zones=zones)
