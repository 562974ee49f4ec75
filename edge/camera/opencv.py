"""Frames through OpenCV's ``cv2.VideoCapture``: a USB camera index, a video file or an RTSP URL.

Each frame is converted to greyscale and resized (area averaging) to the size the
pipeline works on. A live camera or stream that stops giving frames raises
:class:`CameraDisconnectedError` so the worker reconnects; a file that ends gives
``None`` (and is timed by its own clock, so a recording replays faithfully).
OpenCV is imported when the source opens: it is the optional ``opencv`` extra.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from edge.camera.errors import CameraDisconnectedError, CameraUnavailableError, FrameFormatError
from edge.camera.source import Frame, FrameSource

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig
    from edge.camera.zones import ZoneSpec
    from firmware_bridge.sim.truth import ZoneVisit


def _import_cv2() -> Any:
    try:
        import cv2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise CameraUnavailableError(
            "camera source 'opencv' needs OpenCV: pip install 'shelfsense[opencv]'"
            " (opencv-python-headless), or set camera.source to 'picamera2' or 'sim'"
        ) from err
    return cv2


def parse_device(device: str) -> int | str:
    """A USB camera index for a string of digits, else the path or URL as given."""
    text = device.strip()
    return int(text) if text.isdigit() else text


class OpenCVSource(FrameSource):
    """Greyscale frames from anything ``cv2.VideoCapture`` can open.

    ``cv2_module`` stands in for the ``cv2`` module (by default imported on open).
    """

    key = "opencv"

    def __init__(
        self,
        *,
        device: str = "0",
        width: int = 320,
        height: int = 240,
        fps: float = 10.0,
        read_timeout_s: float = 1.0,
        cv2_module: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(width=width, height=height)
        self.device = parse_device(device)
        self.fps = fps
        self.read_timeout_s = read_timeout_s
        self._cv2 = cv2_module
        self._clock = clock
        self._cap: Any = None
        self.is_file = isinstance(self.device, str) and Path(self.device).is_file()

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        *,
        visits: Sequence[ZoneVisit] = (),
        zones: Sequence[ZoneSpec] | None = None,
    ) -> Self:
        """The configured ``opencv_device`` at the configured size."""
        return cls(
            device=cfg.opencv_device,
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            read_timeout_s=cfg.read_timeout_s,
        )

    def open(self) -> None:
        """Open the capture; raise :class:`CameraDisconnectedError` when it does not open."""
        cv2 = self._cv2 if self._cv2 is not None else _import_cv2()
        self._cv2 = cv2
        self.close()
        timeout_ms = int(self.read_timeout_s * 1000)
        params: list[int] = []
        for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
            prop = getattr(cv2, name, None)
            if prop is not None and isinstance(self.device, str) and not self.is_file:
                params += [int(prop), max(timeout_ms, 1000)]
        cap = (
            cv2.VideoCapture(self.device, cv2.CAP_ANY, params)
            if params
            else cv2.VideoCapture(self.device)
        )
        if not cap.isOpened():
            cap.release()
            raise CameraDisconnectedError(f"OpenCV could not open {self.device!r}")
        if isinstance(self.device, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap

    def read(self) -> Frame | None:
        """The next frame in grey at the configured size; ``None`` at the end of a file."""
        if self._cap is None:
            raise CameraDisconnectedError("the OpenCV capture is not open")
        cv2 = self._cv2
        ok, img = self._cap.read()
        if not ok or img is None:
            if self.is_file:
                return None
            raise CameraDisconnectedError(f"no frame from {self.device!r}")
        t = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0 if self.is_file else self._clock()
        return Frame(self.to_luma(img), t)

    def to_luma(self, img: Any) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """A BGR/BGRA/grey OpenCV image as uint8 grey at the configured size."""
        cv2 = self._cv2
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise FrameFormatError("OpenCV gave a frame that is not a uint8 array")
        if img.ndim == 3 and img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
        elif img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        elif img.ndim != 2:
            raise FrameFormatError(f"OpenCV gave a frame of shape {img.shape}")
        if img.shape != (self.height, self.width):
            img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img, dtype=np.uint8)

    def close(self) -> None:
        """Release the capture."""
        cap, self._cap = self._cap, None
        if cap is not None:
            with contextlib.suppress(Exception):  # a dead device may refuse; it is gone
                cap.release()
