"""Raspberry Pi camera frames through Picamera2 (libcamera), the lores YUV420 stream.

The camera runs a video configuration with a small ``lores`` stream (e.g. 320x240
YUV420) at a fixed frame duration; each read takes the next lores buffer and keeps
only its Y (luma) plane, cutting away the row padding (stride) and the chroma rows.
Picamera2 is imported only when the source is opened: it comes from the Pi OS apt
package ``python3-picamera2``, and a machine without it gets a clear error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from edge.camera.errors import CameraDisconnectedError, CameraUnavailableError, FrameFormatError
from edge.camera.source import Frame, FrameSource

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig
    from edge.camera.zones import ZoneSpec
    from firmware_bridge.sim.truth import ZoneVisit

APT_PACKAGE = "python3-picamera2"


def _import_picamera2() -> Callable[..., Any]:
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise CameraUnavailableError(
            "camera source 'picamera2' needs the Picamera2 library, which is not importable"
            f" here: install the Raspberry Pi OS apt package {APT_PACKAGE}"
            f" (sudo apt install {APT_PACKAGE}) and make the venv with"
            " --system-site-packages, or set camera.source to 'opencv' or 'sim'"
        ) from err
    factory: Callable[..., Any] = Picamera2
    return factory


class Picamera2Source(FrameSource):
    """Luma frames from the Pi camera's lores YUV420 stream.

    ``picamera2_factory`` stands in for the ``Picamera2`` class (tests pass a fake);
    by default the real one is imported when the source opens.
    """

    key = "picamera2"

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 240,
        fps: float = 10.0,
        read_timeout_s: float = 1.0,
        camera_num: int = 0,
        picamera2_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(width=width, height=height)
        self.fps = fps
        self.read_timeout_s = read_timeout_s
        self.camera_num = camera_num
        self._factory = picamera2_factory
        self._clock = clock
        self._cam: Any = None

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        *,
        visits: Sequence[ZoneVisit] = (),
        zones: Sequence[ZoneSpec] | None = None,
    ) -> Self:
        """The Pi camera at the configured lores size and frame rate."""
        return cls(
            width=cfg.width, height=cfg.height, fps=cfg.fps, read_timeout_s=cfg.read_timeout_s
        )

    def camera_configuration(self, cam: Any) -> Any:
        """The Picamera2 video configuration: a lores YUV420 stream at a fixed frame rate."""
        frame_us = round(1_000_000 / self.fps)
        main_size = (max(640, self.width), max(480, self.height))
        return cam.create_video_configuration(
            main={"size": main_size},
            lores={"size": (self.width, self.height), "format": "YUV420"},
            buffer_count=4,
            controls={"FrameDurationLimits": (frame_us, frame_us)},
        )

    def open(self) -> None:
        """Start the camera; a missing library or camera raises a :class:`CameraError`."""
        factory = self._factory if self._factory is not None else _import_picamera2()
        self.close()
        try:
            cam = factory(self.camera_num)
        except Exception as err:  # libcamera raises RuntimeError/IndexError when no camera
            raise CameraDisconnectedError(f"no Pi camera {self.camera_num}: {err}") from err
        try:
            cam.configure(self.camera_configuration(cam))
            cam.start()
        except Exception as err:
            _close_quietly(cam)
            raise CameraDisconnectedError(f"Pi camera would not start: {err}") from err
        self._cam = cam

    def read(self) -> Frame | None:
        """The Y plane of the next lores buffer, or ``None`` after the read timeout."""
        if self._cam is None:
            raise CameraDisconnectedError("the Pi camera is not open")
        try:
            job = self._cam.capture_array("lores", wait=False)
            buf = self._cam.wait(job, timeout=self.read_timeout_s)
        except TimeoutError:
            return None
        except Exception as err:
            raise CameraDisconnectedError(f"Pi camera read failed: {err}") from err
        t = self._clock()
        if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 2:
            raise FrameFormatError("the lores stream did not give a 2-D uint8 YUV420 buffer")
        rows, stride = buf.shape
        if rows < self.height or stride < self.width:
            raise FrameFormatError(
                f"lores buffer {stride}x{rows} is smaller than {self.width}x{self.height}"
            )
        y_plane = np.array(buf[: self.height, : self.width], dtype=np.uint8, copy=True)
        return Frame(y_plane, t)

    def close(self) -> None:
        """Stop and release the camera."""
        cam, self._cam = self._cam, None
        if cam is not None:
            _close_quietly(cam)


def _close_quietly(cam: Any) -> None:
    for name in ("stop", "close"):
        fn = getattr(cam, name, None)
        if fn is None:
            continue
        with contextlib.suppress(Exception):  # a dead camera may refuse; it is gone
            fn()
