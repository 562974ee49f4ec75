"""Scenarios: the parameters of one simulated bay, read from a TOML file.

A scenario fixes the bay layout (slots, SKUs, unit weights, stock), the traffic
(shopper arrivals and their intent mix, staff restocks), the HX711 model of each
channel (scale, offset, noise, creep, drift, vibration, spikes) and fault rates.
It never holds a seed: the same scenario with another seed is another day in the
same store. :func:`load_scenario` takes a shipped name (``quiet``, ``busy``,
``noisy``, ``faulty``, ``mixed``, ``rush``; held out: ``heldout``,
``crowded``) or a path, and raises :class:`ScenarioError`
naming the file and the key at fault.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_bridge.errors import BridgeError
from models.validation import describe

SCENARIO_DIR = Path(__file__).with_name("scenarios")
INTENTS: tuple[str, ...] = ("pass_by", "glance", "browse", "touch", "take", "misplace")
ADC_MAX = (1 << 23) - 1
ADC_MIN = -(1 << 23)


class ScenarioError(BridgeError, ValueError):
    """A scenario that cannot be used; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlotSpec(_Model):
    """One product slot: the channel weighing it, its SKU and its stock."""

    slot: int = Field(..., ge=0, le=63, description="Slot index within the bay.")
    channel: int = Field(..., ge=0, le=63, description="Load-cell channel under the slot.")
    sku: str = Field(..., min_length=1, description="SKU stocked on the slot.")
    unit_grams: float = Field(..., ge=5, le=20_000, description="Weight of one unit, grams.")
    capacity: int = Field(..., ge=1, le=500, description="Units the slot holds when full.")
    initial: int = Field(..., ge=0, description="Units on the slot when the run starts.")
    tray_grams: float = Field(250.0, ge=0, le=10_000, description="Empty tray on the cell.")

    @model_validator(mode="after")
    def _initial_fits(self) -> SlotSpec:
        if self.initial > self.capacity:
            raise ValueError(f"initial ({self.initial}) exceeds capacity ({self.capacity})")
        return self


class TrafficSpec(_Model):
    """Shoppers: how often they come and what they mean to do."""

    arrivals_per_hour: float = Field(60.0, ge=0, le=3600, description="Poisson arrival rate.")
    intent_mix: dict[str, float] = Field(
        default_factory=lambda: {
            "pass_by": 0.3,
            "glance": 0.2,
            "browse": 0.15,
            "touch": 0.1,
            "take": 0.2,
            "misplace": 0.05,
        },
        description="Relative weights of intents: pass_by, glance, browse, touch, take, misplace.",
    )
    max_take_units: int = Field(2, ge=1, le=10, description="Most units taken in one reach.")
    long_hold_fraction: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share of touches where the unit is held away from the shelf and "
        "put back later (a removal then a return) rather than put back at once.",
    )
    handling_s: tuple[float, float] = Field(
        (1.5, 4.0), description="Range of hand-on-shelf durations, seconds (at most 20)."
    )
    press_grams: tuple[float, float] = Field(
        (30.0, 250.0), description="Range of hand-press amplitudes while handling, grams."
    )

    @model_validator(mode="after")
    def _mix(self) -> TrafficSpec:
        unknown = set(self.intent_mix) - set(INTENTS)
        if unknown:
            raise ValueError(f"unknown intents {sorted(unknown)}; known: {list(INTENTS)}")
        if any(w < 0 for w in self.intent_mix.values()) or sum(self.intent_mix.values()) <= 0:
            raise ValueError("intent weights must be >= 0 with a positive sum")
        for name, (lo, hi), top in (
            ("handling_s", self.handling_s, 20.0),
            ("press_grams", self.press_grams, 5000.0),
        ):
            if not 0 < lo <= hi <= top:
                raise ValueError(f"{name} must be a range 0 < low <= high <= {top:g}")
        return self


class StaffSpec(_Model):
    """Staff: restock rounds that top low slots up to capacity."""

    restocks_per_hour: float = Field(2.0, ge=0, le=120, description="Poisson rate of rounds.")
    restock_below: float = Field(
        0.6, ge=0, le=1, description="A round tops up slots below this fraction of capacity."
    )


class HX711Spec(_Model):
    """The load cell and ADC of every channel (per-channel values vary around these)."""

    counts_per_gram: float = Field(250.0, ge=20, le=2000, description="Mean ADC scale.")
    counts_per_gram_spread: float = Field(
        0.3, ge=0, le=0.8, description="Per-channel scale varies by +/- this fraction."
    )
    offset_counts: float = Field(
        150_000, ge=-4_000_000, le=4_000_000, description="Mean zero offset."
    )
    offset_spread_counts: float = Field(80_000, ge=0, le=2_000_000, description="+/- spread.")
    noise_grams: float = Field(0.5, ge=0, le=50, description="White noise sigma, grams.")
    spikes_per_hour: float = Field(4.0, ge=0, le=10_000, description="Single-sample glitches.")
    spike_grams: float = Field(300.0, ge=0, le=100_000, description="Glitch amplitude.")
    creep_fraction: float = Field(
        0.001, ge=0, le=0.05, description="Creep after a load change, fraction of the change."
    )
    creep_tau_s: float = Field(120.0, gt=0, le=7200, description="Creep time constant.")
    drift_grams: float = Field(1.0, ge=0, le=500, description="Temperature drift amplitude.")
    drift_period_s: float = Field(3600.0, gt=60, le=86_400, description="Drift cycle period.")
    drift_walk_grams: float = Field(
        0.02, ge=0, le=10, description="Random-walk drift, grams per sqrt(second)."
    )
    vibration_grams: float = Field(
        0.0, ge=0, le=500, description="Neighbour vibration amplitude while a slot is handled."
    )
    ring_grams: float = Field(10.0, ge=0, le=1000, description="Ringing after a release.")


class FaultSpec(_Model):
    """Sensor faults, per hour for the whole bay (each hits one random channel)."""

    stuck_per_hour: float = Field(0.0, ge=0, le=100, description="ADC repeats one value.")
    offset_jump_per_hour: float = Field(0.0, ge=0, le=100, description="Zero offset jumps.")
    offset_jump_grams: float = Field(400.0, ge=0, le=100_000, description="Jump size, grams.")
    disconnect_per_hour: float = Field(0.0, ge=0, le=100, description="Channel stops answering.")
    duration_s: tuple[float, float] = Field(
        (5.0, 60.0), description="Range of stuck/disconnect durations, seconds."
    )


class Scenario(_Model):
    """A whole simulated bay: layout, traffic, sensors, faults."""

    name: str = Field(..., min_length=1, description="Scenario name.")
    description: str = Field("", description="What the scenario is for.")
    sps: int = Field(80, description="HX711 output rate: 10 or 80 samples per second.")
    slots: list[SlotSpec] = Field(..., min_length=1, description="Product slots.")
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)  # type: ignore[arg-type]
    staff: StaffSpec = Field(default_factory=StaffSpec)  # type: ignore[arg-type]
    hx711: HX711Spec = Field(default_factory=HX711Spec)  # type: ignore[arg-type]
    faults: FaultSpec = Field(default_factory=FaultSpec)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _layout(self) -> Scenario:
        if self.sps not in (10, 80):
            raise ValueError(f"sps must be 10 or 80, not {self.sps}")
        slots = [s.slot for s in self.slots]
        channels = [s.channel for s in self.slots]
        if len(set(slots)) != len(slots):
            raise ValueError("a slot is listed twice")
        if len(set(channels)) != len(channels):
            raise ValueError("a channel weighs two slots")
        hx = self.hx711
        top_scale = hx.counts_per_gram * (1 + hx.counts_per_gram_spread)
        top_offset = abs(hx.offset_counts) + hx.offset_spread_counts
        for s in self.slots:
            full = s.tray_grams + s.capacity * s.unit_grams * 1.5  # room for misplaced items
            if top_offset + top_scale * full > 0.9 * ADC_MAX:
                raise ValueError(
                    f"slot {s.slot}: a full slot ({full:.0f} g) would saturate the ADC at "
                    f"{top_scale:.0f} counts/g; lower counts_per_gram or capacity"
                )
        return self

    @property
    def channels(self) -> int:
        """Number of ADC channels the bay reads (highest channel + 1)."""
        return max(s.channel for s in self.slots) + 1

    def slot(self, slot: int) -> SlotSpec:
        """The slot with index ``slot``."""
        for s in self.slots:
            if s.slot == slot:
                return s
        raise KeyError(slot)


def parse_scenario(data: dict[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed mapping; errors name ``source`` and the key."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(describe(err, source)) from None


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped with the simulator."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, or a scenario TOML file by path."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = SCENARIO_DIR / f"{name_or_path}.toml"
        if not p.exists():
            raise ScenarioError(
                f"no scenario named {name_or_path!r}; shipped: {', '.join(shipped_scenarios())}"
            )
    source = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{source}: no such scenario file") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{source}: not valid TOML: {err}") from None
    return parse_scenario(data, source=source)
