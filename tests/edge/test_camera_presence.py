"""Presence: hysteresis on occupancy, and the detector on simulated frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.camera.background import BackgroundModel, BackgroundParams, box_mean, downscale
from edge.camera.config import CameraConfig
from edge.camera.presence import Hysteresis, PresenceDetector, ZoneTracker
from edge.camera.sim import SimulatedSource
from firmware_bridge.sim.truth import ZoneVisit
from models.types import Presence

H = Hysteresis(enter_fraction=0.1, leave_fraction=0.05, enter_min_s=0.3, leave_min_s=1.0)


def run_tracker(occ: list[float], dt: float = 0.1, motion: float = 0.2) -> list[Presence]:
    tr = ZoneTracker("bay", H)
    out = [p for i, o in enumerate(occ) if (p := tr.update(i * dt, o, motion)) is not None]
    if (p := tr.flush(len(occ) * dt)) is not None:
        out.append(p)
    return out


def test_episode_is_dated_from_first_rise_to_first_fall() -> None:
    occ = [0.0] * 10 + [0.3] * 50 + [0.0] * 30
    (p,) = run_tracker(occ)
    assert p.t_enter == pytest.approx(1.0) and p.t_leave == pytest.approx(6.0)
    assert p.dwell == pytest.approx(5.0) and p.entries == 1 and p.peak_motion == 0.2


def test_short_spike_makes_no_episode_and_short_dip_is_a_reentry() -> None:
    assert run_tracker([0.0] * 5 + [0.5, 0.5] + [0.0] * 20) == []
    occ = [0.3] * 20 + [0.0] * 5 + [0.3] * 20 + [0.0] * 20
    (p,) = run_tracker(occ)
    assert p.entries == 2 and p.dwell == pytest.approx(4.5)


def test_occupancy_between_thresholds_holds_an_episode_open() -> None:
    (p,) = run_tracker([0.3] * 10 + [0.07] * 40 + [0.0] * 20)
    assert p.dwell == pytest.approx(5.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=300))
def test_tracker_invariants(occ: list[float]) -> None:
    eps = run_tracker(occ)
    for p in eps:
        assert p.t_leave >= p.t_enter and p.dwell == pytest.approx(p.t_leave - p.t_enter)
        assert p.entries >= 1
    for a, b in itertools.pairwise(eps):
        assert b.t_enter >= a.t_leave  # episodes never overlap
    if max(occ) < H.enter_fraction:
        assert eps == []


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 2**32 - 1),
)
def test_box_mean_is_the_mean_of_the_edge_replicated_window(
    h: int, w: int, radius: int, seed: int
) -> None:
    a = np.random.default_rng(seed).uniform(0, 255, (h, w)).astype(np.float32)
    got = box_mean(a, radius)
    k = 2 * radius + 1
    p = np.pad(a.astype(np.float64), radius, mode="edge")
    want = np.array(
        [[p[y : y + k, x : x + k].mean() for x in range(w)] for y in range(h)], dtype=np.float64
    )
    assert got.dtype == np.float32 and got.shape == a.shape
    assert np.allclose(got, want, rtol=0, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(1, 20),
    st.sampled_from([1, 2, 3, 4, 16, 17]),
    st.integers(0, 2**32 - 1),
)
def test_downscale_averages_whole_blocks_exactly(h: int, w: int, scale: int, seed: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    got = downscale(img, scale)
    h2, w2 = h // scale, w // scale
    sums = np.array(
        [
            [
                int(img[y * scale : (y + 1) * scale, x * scale : (x + 1) * scale].sum())
                for x in range(w2)
            ]
            for y in range(h2)
        ],
        dtype=np.float32,
    ).reshape(h2, w2)
    assert got.dtype == np.float32 and got.shape == (h2, w2)
    # the block sum is exact; the mean is that sum times the float32 of 1 / scale**2
    assert np.array_equal(got, sums * np.float32(1.0 / scale**2))


def test_background_ignores_flicker_and_soft_shadow_but_sees_an_object() -> None:
    rng = np.random.default_rng(1)
    scene = rng.uniform(60, 180, size=(120, 160)).astype(np.float32)
    model = BackgroundModel(160, 120, BackgroundParams(learn_frames=5))
    for i in range(30):
        gain = 1.0 + 0.1 * np.sin(i)  # strong global flicker
        fg, _ = model.apply(np.clip(scene * gain, 0, 255).astype(np.uint8))
    assert fg.mean() < 0.01
    yy, xx = np.mgrid[0:120, 0:160]
    shade = 1.0 - 0.3 * np.clip(1.2 - np.hypot(yy - 60, xx - 80) / 40, 0, 1)  # soft shadow
    fg, _ = model.apply(np.clip(scene * shade, 0, 255).astype(np.uint8))
    assert fg.mean() < 0.01
    obj = scene.copy()
    obj[40:80, 60:100] = 240.0 - 30 * (xx[40:80, 60:100] % 2)  # an opaque object
    fg, motion = model.apply(np.clip(obj, 0, 255).astype(np.uint8))
    assert fg[22:38, 32:48].mean() > 0.9 and motion[22:38, 32:48].mean() > 0.5


def _detect(visits: list[ZoneVisit], duration: float, seed: int = 3) -> list[Presence]:
    cfg = CameraConfig(sim_seed=seed)
    src = SimulatedSource.from_config(cfg, visits=visits)
    src.duration_s = duration
    det = PresenceDetector.from_config(cfg)
    out: list[Presence] = []
    with src:
        while (f := src.read()) is not None:
            out += det.process(f)
    return out + det.flush()


def test_detector_finds_bay_and_slot_episodes_with_dwell() -> None:
    visits = [
        ZoneVisit(1, "bay", 5.0, 15.0, 0.4, "take"),
        ZoneVisit(1, "slot-1", 8.0, 11.0, 0.8, "take"),
        ZoneVisit(2, "bay", 20.0, 21.8, 0.95, "pass_by"),
    ]
    found = _detect(visits, 26.0)
    assert sorted(p.zone for p in found) == ["bay", "bay", "slot-1"]
    for v in visits:
        (p,) = [p for p in found if p.zone == v.zone and abs(p.t_enter - v.t_enter) < 1]
        assert abs(p.dwell - (v.t_leave - v.t_enter)) < 0.5


def test_empty_scene_with_shadows_and_flicker_gives_no_presence() -> None:
    assert _detect([], 120.0, seed=4) == []


def test_more_motion_gives_higher_peak_motion() -> None:
    calm = _detect([ZoneVisit(1, "bay", 4.0, 12.0, 0.05, "glance")], 15.0)
    busy = _detect([ZoneVisit(1, "bay", 4.0, 12.0, 0.9, "browse")], 15.0)
    assert len(calm) == 1 and len(busy) == 1
    assert busy[0].peak_motion > calm[0].peak_motion


def test_features_are_small_numbers_per_zone() -> None:
    cfg = CameraConfig()
    det = PresenceDetector.from_config(cfg)
    src = SimulatedSource.from_config(cfg, visits=[ZoneVisit(1, "bay", 1.0, 3.0, 0.5, "glance")])
    t = 0.0
    with src:
        for _ in range(25):
            f = src.read()
            assert f is not None
            det.process(f)
            t = f.t
    feats = det.last_features
    assert feats is not None
    d = feats.as_dict()
    assert set(d) == {"t"} | {f"{k}.{z}" for k in ("occ", "motion") for z in det.zones.names}
    assert all(isinstance(v, float) and 0.0 <= v <= 1000.0 for v in d.values())
    assert d["occ.bay"] > 0.05
    (open_ep,) = det.open_episodes(t)
    assert open_ep.zone == "bay" and open_ep.dwell > 0
