"""The ``[camera]`` section of the unit config: source, frame size, zones, detection.

Every key has a default, bounds and a description. Zone polygons are checked
when the config is validated (inside the unit, normalised [0, 1] coordinates,
not self-intersecting), so ``shelfsense edge run --check-config`` names the bad
zone before the agent starts. An empty ``zones`` list means the default layout:
``bay`` across the lower part of the frame, ``slot-0..N-1`` columns above it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.camera.zones import ZoneSpec, default_layout, validate_polygon

SourceKey = Literal["sim", "picamera2", "opencv"]


class _Section(BaseModel):
    """Base of the camera config models: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ZoneConfig(_Section):
    """One camera zone: a named polygon in normalised image coordinates."""

    name: str = Field(
        default=...,
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Zone name: 'bay' (floor in front of the bay) or 'slot-<n>' (shelf area).",
    )
    polygon: list[tuple[float, float]] = Field(
        default=...,
        min_length=3,
        max_length=64,
        description="Vertices (x, y) in [0, 1], x to the right, y down, in order.",
    )
    enter_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Occupancy that starts an episode (default: camera-wide).",
    )
    leave_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Occupancy below which an episode ends (default: camera-wide).",
    )

    @model_validator(mode="after")
    def _valid_polygon(self) -> ZoneConfig:
        validate_polygon(self.name, self.polygon)
        return self


class CameraConfig(_Section):
    """Where frames come from and how presence is found in them."""

    source: SourceKey = Field(default="sim", description="sim | picamera2 | opencv")
    width: int = Field(
        default=320, ge=32, le=1920, description="Frame width the pipeline works on, px."
    )
    height: int = Field(
        default=240, ge=24, le=1080, description="Frame height the pipeline works on, px."
    )
    fps: float = Field(
        default=10.0, gt=0, le=60, description="Frames per second asked of the camera."
    )
    process_scale: Literal[1, 2, 4] = Field(
        default=2, description="Average NxN pixel blocks before detection (2: 320x240 -> 160x120)."
    )
    opencv_device: str = Field(
        default="0",
        min_length=1,
        description="cv2.VideoCapture target: USB index, file path or RTSP URL.",
    )
    warmup_frames: int = Field(
        default=5,
        ge=0,
        le=300,
        description="Frames read and dropped after opening (exposure settles).",
    )
    read_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="A read that brings no frame for this long returns empty.",
    )
    stall_timeout_s: float = Field(
        default=3.0, gt=0, le=300, description="No frame for this long: the camera counts as down."
    )
    backoff_initial_s: float = Field(
        default=1.0, gt=0, le=60, description="First wait before reopening a lost camera."
    )
    backoff_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between reopen attempts."
    )
    background_alpha: float = Field(
        default=0.02,
        gt=0,
        le=0.5,
        description="Learning rate of the background for background pixels.",
    )
    learn_frames: int = Field(
        default=20, ge=1, le=10_000, description="Frames of fast learning after start or reconnect."
    )
    threshold_sigma: float = Field(
        default=4.0,
        gt=0,
        le=20,
        description="Foreground when |frame - background| > this many sigmas.",
    )
    min_diff: float = Field(
        default=14.0,
        gt=0,
        le=255,
        description="Foreground needs at least this grey-level difference.",
    )
    max_sigma: float = Field(
        default=6.0, gt=0, le=64, description="Cap of the per-pixel noise deviation, grey levels."
    )
    shadow_suppression: bool = Field(
        default=True,
        description="Drop pixels only scaled in brightness (shadows coming and going).",
    )
    light_learn_factor: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Shadowed or re-lit pixels learn at this share of alpha.",
    )
    object_learn_factor: float = Field(
        default=0.0, ge=0, le=1, description="Foreground pixels learn at this share of alpha."
    )
    shadow_min_ratio: float = Field(
        default=0.45,
        gt=0,
        lt=1,
        description="Darkest frame/background ratio still taken as shadow.",
    )
    light_max_ratio: float = Field(
        default=1.8,
        gt=1,
        le=10,
        description="Brightest frame/background ratio taken as a light change.",
    )
    shadow_texture: float = Field(
        default=0.055, gt=0, le=1, description="Largest local spread of that ratio inside a shadow."
    )
    motion_threshold: float = Field(
        default=12.0,
        gt=0,
        le=255,
        description="Grey-level change between frames that counts as motion.",
    )
    absorb_after_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="Foreground unchanged this long becomes background.",
    )
    still_after_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="Foreground without motion this long becomes background.",
    )
    enter_fraction: float = Field(
        default=0.06, gt=0, le=1, description="Zone occupancy that starts an episode."
    )
    leave_fraction: float = Field(
        default=0.03, gt=0, le=1, description="Zone occupancy below which an episode ends."
    )
    enter_min_s: float = Field(
        default=0.3,
        ge=0,
        le=60,
        description="Occupancy must hold this long before an episode starts.",
    )
    leave_min_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Emptiness must hold this long before an episode ends.",
    )
    default_slots: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Slot columns of the default layout (when zones is empty).",
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="Zone polygons; empty means the default layout."
    )
    debug_snapshot: bool = Field(
        default=False, description="Keep a local greyscale snapshot for setup; never sent anywhere."
    )
    debug_dir: Path = Field(
        default=Path("./var/camera-debug"), description="Where the local debug snapshot is written."
    )
    debug_interval_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Shortest time between two debug snapshots."
    )
    sim_seed: int = Field(default=1, description="Seed of the simulated camera (source=sim).")
    sim_shadows: bool = Field(default=True, description="Simulate drifting and cast shadows.")
    sim_flicker: bool = Field(
        default=True, description="Simulate mains flicker and slow light drift."
    )
    sim_noise: float = Field(
        default=3.0, ge=0, le=50, description="Simulated sensor noise, grey levels."
    )
    sim_realtime: bool = Field(
        default=False,
        description="Pace simulated frames to the wall clock instead of as fast as asked.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CameraConfig:
        if self.leave_fraction > self.enter_fraction:
            raise ValueError("leave_fraction must not exceed enter_fraction")
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s must not exceed backoff_max_s")
        if self.width % self.process_scale or self.height % self.process_scale:
            raise ValueError("width and height must be multiples of process_scale")
        names = [z.name for z in self.zones]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"zone '{name}' is configured twice")
        return self

    def zone_specs(self) -> list[ZoneSpec]:
        """The zones to watch: the configured polygons, or the default layout."""
        if not self.zones:
            return default_layout(self.default_slots)
        return [
            ZoneSpec(z.name, tuple(z.polygon), z.enter_fraction, z.leave_fraction)
            for z in self.zones
        ]
