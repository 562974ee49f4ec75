"""The frame source interface: where greyscale frames come from.

A :class:`FrameSource` is opened, warmed up (a few frames dropped while exposure
settles), read frame by frame, and closed. ``read`` is the one method each source
must write: it returns the next :class:`Frame` (a uint8 luma array, height x
width, and a timestamp in seconds) or ``None`` when no frame came within the read
timeout. Frames live only in memory; the caller drops each one after taking its
features. Sources are chosen by key from :data:`edge.camera.registry.SOURCES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import numpy.typing as npt

from edge.camera.errors import FrameFormatError

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig
    from edge.camera.zones import ZoneSpec
    from firmware_bridge.sim.truth import ZoneVisit

Luma = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One greyscale frame (uint8, height x width) and when it was taken, seconds."""

    image: Luma
    t: float


def check_frame(image: object, width: int, height: int) -> Luma:
    """Return ``image`` as a C-contiguous uint8 (height x width) array, or refuse it.

    Raises :class:`FrameFormatError` for another type, dtype or size, so a camera
    that changes resolution under us is noticed instead of breaking the masks.
    """
    if not isinstance(image, np.ndarray):
        raise FrameFormatError(f"a frame must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise FrameFormatError(f"a frame must be uint8, got {image.dtype}")
    if image.shape != (height, width):
        raise FrameFormatError(f"expected a {width}x{height} frame, got shape {image.shape}")
    return np.ascontiguousarray(image)


class FrameSource(ABC):
    """A camera (or a simulation of one) giving greyscale frames of a fixed size."""

    key: ClassVar[str] = ""

    def __init__(self, *, width: int, height: int) -> None:
        self.width = width
        self.height = height

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        *,
        visits: Sequence[ZoneVisit] = (),
        zones: Sequence[ZoneSpec] | None = None,
    ) -> Self:
        """Build the source from the ``[camera]`` config (the simulator also takes visits)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from config")

    def open(self) -> None:  # noqa: B027  (optional hook: most sources need no setup)
        """Acquire the device; raise :class:`CameraError` subclasses when it cannot."""

    def close(self) -> None:  # noqa: B027
        """Release the device; safe to call twice and after a failed open."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` when none came within the read timeout."""

    def warm_up(self, frames: int) -> int:
        """Read and drop up to ``frames`` frames (exposure and gain settle); returns how many."""
        got = 0
        for _ in range(frames):
            if self.read() is not None:
                got += 1
        return got

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
