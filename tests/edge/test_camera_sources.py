"""Frame sources: registry, Picamera2 lores Y plane, OpenCV conversion, simulated frames."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.camera.config import CameraConfig
from edge.camera.errors import CameraDisconnectedError, CameraUnavailableError, FrameFormatError
from edge.camera.opencv import OpenCVSource, parse_device
from edge.camera.picamera import Picamera2Source
from edge.camera.registry import SOURCES, make_source
from edge.camera.sim import SimulatedSource
from edge.camera.source import check_frame
from edge.camera.zones import ZoneSet, default_layout
from firmware_bridge.sim.truth import ZoneVisit


def test_registry_is_explicit_and_builds_each_source() -> None:
    assert set(SOURCES) == {"picamera2", "opencv", "sim"}
    for key, cls in SOURCES.items():
        src = make_source(CameraConfig(source=key))  # type: ignore[arg-type]
        assert type(src) is cls and cls.key == key


def test_missing_picamera2_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a non-Pi
    src = make_source(CameraConfig(source="picamera2"))
    with pytest.raises(CameraUnavailableError, match="python3-picamera2"):
        src.open()


class FakePicamera2:
    """Stands in for picamera2.Picamera2: YUV420 lores buffers with a padded stride."""

    def __init__(self, camera_num: int = 0, *, stride: int = 384, stall_after: int = 99) -> None:
        self.camera_num = camera_num
        self.stride = stride
        self.stall_after = stall_after
        self.config: dict[str, Any] = {}
        self.started = False
        self.n = 0

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        pass

    def capture_array(self, name: str = "main", wait: Any = None) -> str:
        assert name == "lores" and wait is False
        return "job"

    def wait(self, job: str, timeout: float | None = None) -> np.ndarray:
        self.n += 1
        if self.n > self.stall_after:
            raise TimeoutError
        w, h = self.config["lores"]["size"]
        buf = np.full((h * 3 // 2, self.stride), 7, dtype=np.uint8)  # padding and chroma: 7
        cols = min(w, self.stride)
        buf[:h, :cols] = (np.arange(cols)[None, :] + self.n) % 200 + 20  # the Y plane
        return buf


def test_picamera2_takes_the_y_plane_of_the_lores_stream() -> None:
    cams: list[FakePicamera2] = []

    def factory(num: int) -> FakePicamera2:
        cams.append(FakePicamera2(num, stall_after=3))
        return cams[-1]

    src = Picamera2Source(width=320, height=240, fps=10, picamera2_factory=factory)
    src.open()
    cfg = cams[0].config
    assert cfg["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert cfg["controls"]["FrameDurationLimits"] == (100_000, 100_000)
    frame = src.read()
    assert frame is not None and frame.image.shape == (240, 320)
    assert frame.image.dtype == np.uint8 and (frame.image != 7).all()
    src.read(), src.read()
    assert src.read() is None  # the camera stalls: a timeout gives no frame
    src.close()
    assert not cams[0].started


def test_picamera2_refuses_a_buffer_smaller_than_asked() -> None:
    src = Picamera2Source(
        width=320, height=240, picamera2_factory=lambda n: FakePicamera2(n, stride=300)
    )
    src.open()
    with pytest.raises(FrameFormatError):
        src.read()


def test_parse_device() -> None:
    assert parse_device("0") == 0 and parse_device(" 2 ") == 2
    assert parse_device("rtsp://cam.local/stream") == "rtsp://cam.local/stream"


def test_opencv_reads_a_video_file_in_grey_at_size(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG")
    for i in range(5):
        img = np.zeros((48, 64, 3), dtype=np.uint8)
        img[:, : 10 + 10 * i] = (40, 120, 200)
        writer.write(img)
    writer.release()
    src = OpenCVSource(device=str(path), width=32, height=24)
    with src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert len(frames) == 5
    assert all(f.image.shape == (24, 32) and f.image.dtype == np.uint8 for f in frames)
    lit = [int((f.image > 60).sum()) for f in frames]
    assert lit == sorted(lit) and lit[0] < lit[-1]  # the bright band grows frame by frame
    assert frames[1].t > frames[0].t


def test_opencv_missing_device_raises_disconnected() -> None:
    pytest.importorskip("cv2")
    src = OpenCVSource(device="/nonexistent/video.avi", width=32, height=24)
    with pytest.raises(CameraDisconnectedError):
        src.open()


def test_check_frame_refuses_wrong_shape_and_dtype() -> None:
    with pytest.raises(FrameFormatError):
        check_frame(np.zeros((24, 32), dtype=np.uint8), 320, 240)
    with pytest.raises(FrameFormatError):
        check_frame(np.zeros((240, 320), dtype=np.float32), 320, 240)
    with pytest.raises(FrameFormatError):
        check_frame("pixels", 320, 240)


VISITS = [
    ZoneVisit(1, "bay", 1.0, 4.0, 0.4, "touch"),
    ZoneVisit(1, "slot-2", 2.0, 3.5, 0.7, "touch"),
]


def _frames(seed: int) -> list[np.ndarray]:
    src = SimulatedSource(VISITS, width=160, height=120, seed=seed, duration_s=5.0)
    with src:
        return [f.image for f in iter(src.read, None)]


def test_sim_is_seeded_and_deterministic() -> None:
    a, b, c = _frames(3), _frames(3), _frames(4)
    assert len(a) == 50
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_sim_draws_people_in_their_zones() -> None:
    src = SimulatedSource(VISITS, width=160, height=120, seed=1, duration_s=5.0, noise=0.0)
    src.shadows = src.flicker = False
    zs = ZoneSet(default_layout(4), 160, 120)
    empty = src.render(0.1)
    bay_t = src.render(1.6)
    slot_t = src.render(2.8)
    bay = zs.masks[zs.names.index("bay")]
    slot = zs.masks[zs.names.index("slot-2")]
    other = zs.masks[zs.names.index("slot-0")]
    changed = np.abs(bay_t.astype(int) - empty) > 20
    assert changed[bay].mean() > 0.05 and changed[slot].mean() < 0.01
    changed = np.abs(slot_t.astype(int) - empty) > 20
    assert changed[slot].mean() > 0.05 and changed[other].mean() < 0.01


def test_sim_realtime_paces_frames_to_the_clock() -> None:
    now = [50.0]
    waits: list[float] = []

    def sleep(dt: float) -> None:
        waits.append(dt)
        now[0] += dt

    src = SimulatedSource(
        [],
        width=64,
        height=48,
        fps=10,
        duration_s=1.0,
        realtime=True,
        clock=lambda: now[0],
        sleep=sleep,
    )
    with src:
        frames = list(iter(src.read, None))
    assert len(frames) == 10
    assert waits == pytest.approx([0.1] * 9)
    assert now[0] == pytest.approx(50.9)
