"""The ``[signals]`` section of the unit config: how raw weight becomes settled changes.

Every key has a default that works on a typical bay at 80 SPS, bounds, and a
description; unknown keys are refused like everywhere else in the config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SignalsConfig(BaseModel):
    """Filtering, settle detection and zero tracking of the load-cell signal."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rate_hz: int = Field(
        default=10,
        ge=1,
        le=80,
        description="Rate the filtered weight is decided at; raw samples are decimated to it.",
    )
    filter: Literal["median", "mean"] = Field(
        default="median",
        description="How a group of raw samples is reduced: median rejects spikes.",
    )
    stable_band_g: float = Field(
        default=6.0,
        gt=0,
        le=1000,
        description="A change begins when the filtered weight leaves baseline +/- this, grams.",
    )
    settle_band_g: float = Field(
        default=6.0,
        gt=0,
        le=1000,
        description="Settled when the spread (max - min) over settle_s stays within this, grams.",
    )
    settle_s: float = Field(
        default=1.0, ge=0.2, le=30, description="How long the weight must hold still to be settled."
    )
    zero_track_tau_s: float = Field(
        default=10.0,
        ge=0.5,
        le=3600,
        description="Time constant with which a quiet channel's baseline follows slow drift.",
    )
    min_units: float = Field(
        default=0.5,
        ge=0.1,
        le=0.95,
        description="Changes smaller than this fraction of a unit move no units (see touch_g).",
    )
    touch_g: float = Field(
        default=25.0,
        ge=0,
        le=10_000,
        description="A change smaller than min_units whose weight went this far from its "
        "baseline on the way (a unit lifted and set back, a hand leaning) is still reported, "
        "as a change of 0 units; 0 turns this off.",
    )
    stuck_s: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="A channel repeating one raw code this long is stuck: its samples are "
        "left out until it answers again (keep it below settle_s); 0 turns this off.",
    )
    max_change_s: float = Field(
        default=120.0,
        ge=5,
        le=3600,
        description="A change that never settles is closed after this long (low confidence).",
    )
