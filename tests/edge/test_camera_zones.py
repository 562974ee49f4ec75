"""Zone polygons: validation names the bad zone, rasterising matches the area."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.camera.config import CameraConfig
from edge.camera.errors import ZoneError
from edge.camera.zones import (
    ZoneSet,
    ZoneSpec,
    default_layout,
    polygon_area,
    rasterise,
    validate_polygon,
)
from edge.config import load_config, parse_config
from edge.errors import ConfigError

coord = st.floats(0.0, 1.0, allow_nan=False)


def test_self_intersecting_polygon_is_refused_with_its_name() -> None:
    with pytest.raises(ZoneError, match=r"slot-2.*self-intersecting"):
        validate_polygon("slot-2", [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])


@given(x=st.floats(1.0001, 50.0), y=coord)
def test_out_of_bounds_point_is_refused(x: float, y: float) -> None:
    with pytest.raises(ZoneError, match=r"'bay'.*outside the frame"):
        validate_polygon("bay", [(0.1, 0.1), (x, y), (0.1, 0.9)])


def test_zone_error_is_a_config_error_and_config_names_key() -> None:
    assert issubclass(ZoneError, ConfigError)
    bowtie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    with pytest.raises(ConfigError, match=r"camera\.zones\.0.*zone 'slot-7'"):
        parse_config({"camera": {"zones": [{"name": "slot-7", "polygon": bowtie}]}})


def test_degenerate_polygons_are_refused() -> None:
    with pytest.raises(ZoneError, match="no area"):
        validate_polygon("bay", [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)])
    with pytest.raises(ZoneError, match="same"):
        validate_polygon("bay", [(0.1, 0.1), (0.1, 0.1), (0.9, 0.9)])


@settings(max_examples=40, deadline=None)
@given(
    cx=st.floats(0.3, 0.7),
    cy=st.floats(0.3, 0.7),
    r=st.floats(0.1, 0.28),
    n=st.integers(3, 12),
    rot=st.floats(0, 2 * math.pi),
)
def test_convex_polygon_raster_area_matches_shoelace(
    cx: float, cy: float, r: float, n: int, rot: float
) -> None:
    poly = [
        (cx + r * math.cos(rot + 2 * math.pi * k / n), cy + r * math.sin(rot + 2 * math.pi * k / n))
        for k in range(n)
    ]
    validate_polygon("z", poly)
    mask = rasterise(poly, 160, 120)
    assert abs(mask.mean() - polygon_area(poly)) < 0.01


def test_default_layout_is_valid_and_disjoint() -> None:
    zones = default_layout(5)
    assert [z.name for z in zones] == ["bay", *(f"slot-{i}" for i in range(5))]
    zs = ZoneSet(zones, 160, 120)
    assert (zs.masks.sum(axis=0) <= 1).all()
    bay = zs.masks[0]
    rows = np.nonzero(bay.any(axis=1))[0]
    assert rows.min() > 60  # the bay is in the lower part of the frame
    for m in zs.masks[1:]:
        assert np.nonzero(m.any(axis=1))[0].max() < 60  # slots in the upper part


def test_zone_set_fractions_and_duplicates() -> None:
    zs = ZoneSet(default_layout(2), 40, 30)
    full = np.ones((30, 40), dtype=np.float32)
    assert np.allclose(zs.fractions(full), 1.0)
    assert np.allclose(zs.fractions(np.zeros_like(full)), 0.0)
    with pytest.raises(ZoneError, match="twice"):
        ZoneSet([*default_layout(1), default_layout(1)[0]], 40, 30)


def test_config_zone_specs_default_and_custom() -> None:
    assert [z.name for z in CameraConfig(default_slots=3).zone_specs()] == [
        "bay",
        "slot-0",
        "slot-1",
        "slot-2",
    ]
    cfg = CameraConfig.model_validate(
        {"zones": [{"name": "bay", "polygon": [(0, 0.5), (1, 0.5), (1, 1)], "enter_fraction": 0.2}]}
    )
    (spec,) = cfg.zone_specs()
    assert spec == ZoneSpec("bay", ((0, 0.5), (1, 0.5), (1, 1)), 0.2, None)


def test_unit_config_file_with_camera_zones(tmp_path: Path) -> None:
    path = tmp_path / "unit.toml"
    path.write_text(
        """
[camera]
source = "opencv"
opencv_device = "rtsp://10.0.0.5/stream"

[[camera.zones]]
name = "bay"
polygon = [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]

[[camera.zones]]
name = "slot-0"
polygon = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.5]]
""",
        encoding="utf-8",
    )
    cfg = load_config(path, env={"SHELFSENSE__CAMERA__FPS": "5"})
    assert cfg.camera.source == "opencv" and cfg.camera.fps == 5.0
    assert [z.name for z in cfg.camera.zone_specs()] == ["bay", "slot-0"]
    path.write_text(
        '[[camera.zones]]\nname = "slot-1"\npolygon = [[0.1, 0.1], [1.2, 0.1], [0.4, 0.5]]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"unit\.toml.*zone 'slot-1'.*outside the frame"):
        load_config(path, env={})
