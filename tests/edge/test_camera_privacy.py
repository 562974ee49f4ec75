"""Privacy by construction: a long simulated run writes no pixels and sends none.

Every frame carries a sentinel byte pattern in its top row. After the run no file
under the working or temporary directory may contain it, and neither may the
episodes or per-frame features (the only things the camera hands on). The debug
snapshot, switched on, is the positive control: there the sentinel must show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edge.camera.config import CameraConfig
from edge.camera.sim import SimulatedSource
from edge.camera.source import Frame, FrameSource
from edge.camera.worker import SNAPSHOT_NAME, CameraWorker
from models.types import Presence
from tests.bench.bench_camera import make_visits

SENTINEL = b"\x13SHELF\x37SENSE\x11PIXEL\x7e"


class SentinelSource(FrameSource):
    """Simulated frames with the sentinel stamped across the top row."""

    def __init__(self, cfg: CameraConfig, seconds: float) -> None:
        super().__init__(width=cfg.width, height=cfg.height)
        self.sim = SimulatedSource.from_config(cfg, visits=make_visits(7, seconds))
        self.sim.duration_s = seconds
        reps = -(-cfg.width // len(SENTINEL))
        self.row = np.frombuffer(SENTINEL * reps, dtype=np.uint8)[: cfg.width]

    def open(self) -> None:
        self.sim.open()

    def read(self) -> Frame | None:
        frame = self.sim.read()
        if frame is None:
            return None
        frame.image[0, :] = self.row
        return frame


def files_with_sentinel(root: Path) -> list[Path]:
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            try:
                if SENTINEL[:12] in p.read_bytes():
                    hits.append(p)
            except OSError:
                continue
    return hits


def run_worker(cfg: CameraConfig, seconds: float) -> tuple[list[Presence], list[dict[str, float]]]:
    episodes: list[Presence] = []
    features: list[dict[str, float]] = []
    src = SentinelSource(cfg, seconds)
    worker = CameraWorker.from_config(cfg, lambda: src, on_presence=episodes.append)
    while not worker.connected or src.sim._index < src.sim.frames_total:
        worker.step()
        if worker.detector.last_features is not None:
            features.append(worker.detector.last_features.as_dict())
    episodes += worker.detector.flush()
    worker.close()
    return episodes, features


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    tmp = tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp_path


def test_long_run_writes_no_pixels_and_sends_none(sandbox: Path) -> None:
    cfg = CameraConfig()
    assert cfg.debug_snapshot is False  # off by default
    episodes, features = run_worker(cfg, 300.0)
    assert len(features) >= 2900 and len(episodes) >= 10
    assert list(sandbox.rglob("*")) == [sandbox / "tmp", sandbox / "work"]  # nothing written
    assert files_with_sentinel(sandbox) == []
    payload = json.dumps(
        {"episodes": [dataclasses.asdict(p) for p in episodes], "features": features[-50:]}
    )
    assert SENTINEL[:6].decode("latin-1") not in payload
    for p in episodes:
        assert all(isinstance(v, (int, float, str)) for v in dataclasses.asdict(p).values())
        assert len(json.dumps(dataclasses.asdict(p))) < 200  # a handful of numbers, not pixels
    assert all(len(f) <= 1 + 2 * 5 for f in features)


def test_debug_snapshot_is_local_and_the_scan_would_catch_pixels(sandbox: Path) -> None:
    debug = sandbox / "work" / "debug"
    cfg = CameraConfig(debug_snapshot=True, debug_dir=debug, debug_interval_s=5.0)
    run_worker(cfg, 12.0)
    assert [p.name for p in debug.iterdir()] == [SNAPSHOT_NAME]  # one file, replaced in place
    assert files_with_sentinel(sandbox) == [debug / SNAPSHOT_NAME]
    header = (debug / SNAPSHOT_NAME).read_bytes()[:15]
    assert header.startswith(b"P5\n320 240\n255\n")
