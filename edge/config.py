"""One TOML file per unit, validated into one pydantic model tree.

Every key has a default, bounds and a description; unknown keys are refused.
Environment variables override the file: ``SHELFSENSE__SECTION__KEY=value``
(double underscores separate levels; values are parsed as TOML scalars when they
can be). :func:`load_config` raises :class:`edge.errors.ConfigError` naming the file
and the dotted key at fault, so ``shelfsense edge run --check-config`` can point at it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.buffer.config import BufferConfig
from edge.camera.config import CameraConfig
from edge.errors import ConfigError
from edge.health import HealthConfig
from edge.ota.config import OtaConfig
from edge.signals.config import SignalsConfig
from edge.stock_config import StockConfig
from edge.sync.config import SyncConfig
from models.runtime.config import ModelConfig
from models.validation import describe
from models.wire import ID_PATTERN, TEXT_PATTERN

ENV_PREFIX = "SHELFSENSE__"


class Section(BaseModel):
    """Base of every config section: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class UnitConfig(Section):
    """Who this unit is and where it stands."""

    device_id: str = Field(
        "sim-unit-1",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Device id; names MQTT topics and events.",
    )
    store: str = Field(
        "store-1", pattern=ID_PATTERN, description="Store id this unit is registered in."
    )
    bay: str = Field("bay-1", pattern=ID_PATTERN, description="Shelf bay id this unit watches.")
    data_dir: Path = Field(
        Path("./var"), description="Where the buffer, calibration and models live."
    )


class SlotConfig(Section):
    """One product slot on the bay: which load-cell channel weighs it and what it holds."""

    slot: int = Field(..., ge=0, le=63, description="Slot index within the bay.")
    channel: int = Field(..., ge=0, le=63, description="Load-cell channel weighing this slot.")
    sku: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=TEXT_PATTERN,
        description="SKU normally stocked on this slot (as registered in the cloud).",
    )
    unit_grams: float = Field(..., gt=0, le=100_000, description="Weight of one unit, grams.")
    capacity: int = Field(20, ge=1, le=10_000, description="Units the slot holds when full.")
    low_units: int = Field(3, ge=0, description="At or below this many units the slot is low.")


class HX711Pins(Section):
    """GPIO pins (BCM numbers) of one HX711 board."""

    channel: int = Field(..., ge=0, le=63, description="Channel number this board feeds.")
    dout: int = Field(..., ge=0, le=27, description="BCM pin wired to DOUT.")
    pd_sck: int = Field(..., ge=0, le=27, description="BCM pin wired to PD_SCK.")
    gain: Literal[128, 64, 32] = Field(128, description="Gain/channel: 128 or 64 (A), 32 (B).")


class LoadCellConfig(Section):
    """Where raw load-cell counts come from."""

    source: Literal["sim", "hx711", "serial"] = Field("sim", description="sim | hx711 | serial")
    sps: Literal[10, 80] = Field(80, description="HX711 output rate, samples per second.")
    hx711: list[HX711Pins] = Field(
        default_factory=list, description="Boards on GPIO (source=hx711)."
    )
    serial_port: str = Field("/dev/ttyACM0", description="MCU serial device (source=serial).")
    serial_baud: int = Field(921600, gt=0, description="MCU serial baud rate.")
    read_timeout_s: float = Field(
        0.5, gt=0, le=10, description="Give up on a read after this long."
    )
    sim_scenario: str = Field("quiet", description="Scenario name or TOML path (source=sim).")
    sim_seed: int = Field(1, description="Simulator seed (source=sim).")

    @model_validator(mode="after")
    def _pins_when_gpio(self) -> LoadCellConfig:
        if self.source == "hx711" and not self.hx711:
            raise ValueError(
                "source = 'hx711' needs at least one [[loadcells.hx711]] board with pins"
            )
        return self


class Config(Section):
    """The whole unit configuration."""

    unit: UnitConfig = Field(default_factory=UnitConfig)  # type: ignore[arg-type]
    slots: list[SlotConfig] = Field(default_factory=list, description="Product slots on the bay.")
    loadcells: LoadCellConfig = Field(default_factory=LoadCellConfig)  # type: ignore[arg-type]
    camera: CameraConfig = Field(default_factory=CameraConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)  # type: ignore[arg-type]
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    signals: SignalsConfig = Field(default_factory=SignalsConfig)
    ota: OtaConfig = Field(default_factory=OtaConfig)  # type: ignore[arg-type]
    stock: StockConfig = Field(default_factory=StockConfig)

    @model_validator(mode="after")
    def _unique_slots(self) -> Config:
        seen_slots: set[int] = set()
        seen_channels: set[int] = set()
        for s in self.slots:
            if s.slot in seen_slots:
                raise ValueError(f"slot {s.slot} is configured twice")
            if s.channel in seen_channels:
                raise ValueError(f"channel {s.channel} weighs two slots")
            seen_slots.add(s.slot)
            seen_channels.add(s.channel)
        return self


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return ``data`` with ``SHELFSENSE__A__B=value`` overrides applied."""
    out = dict(data)
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = out
        for part in path[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[path[-1]] = _parse_env_value(raw)
    return out


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> Config:
    """Validate an already-parsed mapping; errors name ``source`` and the key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe(err, source)) from None


def load_config(path: Path | str | None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate a unit config file.

    ``path=None`` gives the defaults (with environment overrides).
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{source}: not valid TOML: {err}") from None
    return parse_config(apply_env(data, env), source=source)
