"""What travels between a unit and the cloud, over HTTP and MQTT.

A unit sends :class:`EventBatch` (HTTP body, gzip JSON) or one :class:`ShelfEvent`
per MQTT message on ``shelfsense/<device_id>/events``. The cloud answers with
:class:`BatchAck` (HTTP) or publishes :class:`MqttAck` on ``shelfsense/<device_id>/ack``:
the seqs it has *durably stored*. A unit drops a row from its outbox only on that.
Events are idempotent on ``(device_id, seq)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_BATCH_EVENTS = 1000
MAX_WINDOW_ITEMS = 64  # presences, changes or slots in one uploaded window

EventKind = Literal["interest", "stock", "level"]
Decider = Literal["model", "rules"]
FeatureValue = float | int | str | bool | None


def topic(device_id: str, leaf: str) -> str:
    """The MQTT topic ``shelfsense/<device_id>/<leaf>``."""
    return f"shelfsense/{device_id}/{leaf}"


class WireModel(BaseModel):
    """Base of wire schemas: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def _time() -> Any:
    return Field(..., ge=-1e9, le=1e10, description="Seconds on the unit's sensor clock.")


class WirePresence(WireModel):
    """A camera episode as in :class:`models.types.Presence`."""

    zone: str = Field(..., min_length=1, max_length=32, examples=["bay"])
    t_enter: float = _time()
    t_leave: float = _time()
    dwell: float = Field(..., ge=0, le=86_400)
    peak_motion: float = Field(..., ge=0, le=1e6)
    entries: int = Field(..., ge=0, le=10_000)


class WireChange(WireModel):
    """A settled weight change as in :class:`models.types.WeightChange`."""

    slot: int = Field(..., ge=0, le=63)
    grams: float = Field(..., ge=-1e6, le=1e6)
    units: int = Field(..., ge=-10_000, le=10_000)
    t_start: float = _time()
    t_settled: float = _time()
    confidence: float = Field(..., ge=0.0, le=1.0)


class WireSlotContext(WireModel):
    """What the unit knew about a slot, as in :class:`models.window.SlotContext`."""

    slot: int = Field(..., ge=0, le=63)
    unit_grams: float = Field(..., ge=0, le=1e6)
    recent_changes: int = Field(0, ge=0, le=1_000_000)
    since_last_s: float | None = Field(None, ge=0, le=1e10)
    stock_units: int | None = Field(None, ge=-10_000, le=100_000)


class WireWindow(WireModel):
    """The event window a decision was made on (``EventWindow.to_dict()``), for training.

    Carried by the first event a window produced; the events after it with the same
    ``episode`` and consecutive seqs are that window's other decisions (its stock events
    in the order of ``changes``).
    """

    bay: str = Field(..., min_length=1, max_length=64)
    episode: int = Field(..., ge=0)
    t_start: float = _time()
    t_end: float = _time()
    hour: int = Field(..., ge=0, le=23)
    presence: WirePresence | None = None
    reaches: list[WirePresence] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    changes: list[WireChange] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    slots: list[WireSlotContext] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    neighbours: int = Field(0, ge=0, le=1_000_000)


class ShelfEvent(WireModel):
    """One decision of a unit: shelf-interest of a presence episode, a stock event, or a level.

    ``seq`` is per device, starts at 1 and only grows (it survives restarts).
    ``label`` is from the taxonomy of ``kind`` (interest / stock) or, for ``level``,
    one of ``ok``, ``low``, ``out``. ``features`` is a compact numeric summary (never pixels);
    ``window`` is what the decision was made on (times, grams, camera episodes — no pixels).
    """

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN, examples=["unit-0007"])
    seq: int = Field(..., ge=1, le=2**62, examples=[1042])
    wall_time: datetime = Field(..., description="UTC wall-clock time of the decision.")
    mono_time: float = Field(..., ge=0, description="Unit monotonic clock, seconds.")
    store: str = Field(..., min_length=1, max_length=64, examples=["store-12"])
    bay: str = Field(..., min_length=1, max_length=64, examples=["bay-3"])
    slot: int | None = Field(None, ge=0, le=63)
    sku: str | None = Field(None, max_length=64, examples=["SKU-000123"])
    kind: EventKind
    label: str = Field(..., min_length=1, max_length=32, examples=["removal"])
    confidence: float = Field(..., ge=0.0, le=1.0)
    units: int | None = Field(None, ge=-10_000, le=10_000, description="Signed units moved.")
    grams: float | None = Field(None, ge=-1e6, le=1e6, description="Signed grams moved.")
    stock_units: int | None = Field(
        None, ge=-10_000, le=100_000, description="Units on the slot after."
    )
    dwell_s: float | None = Field(None, ge=0, le=86_400)
    episode: int | None = Field(None, ge=0, description="Window id linking events of one episode.")
    model_version: int | None = Field(None, ge=0)
    decided_by: Decider = "rules"
    historical: bool = Field(False, description="Sent from the backlog after an outage.")
    features: dict[str, FeatureValue] = Field(default_factory=dict, max_length=64)
    window: WireWindow | None = Field(
        None, description="The window decided (first event of each window only), for training."
    )


class EventBatch(WireModel):
    """A batch of events of one device, oldest first."""

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN)
    events: list[ShelfEvent] = Field(..., min_length=1, max_length=MAX_BATCH_EVENTS)


class BatchAck(WireModel):
    """The cloud's answer to a batch: every seq of it is now durably stored."""

    device_id: str
    stored: list[int] = Field(..., description="Seqs stored by this request.")
    duplicates: list[int] = Field(default_factory=list, description="Seqs already stored before.")
    highest_contiguous: int = Field(..., ge=0, description="All seqs 1..N are stored.")


class Refusal(WireModel):
    """An event the cloud will never store, and why (a unit quarantines it)."""

    seq: int = Field(..., ge=1, le=2**62)
    reason: str = Field(..., max_length=500)


class MqttAck(WireModel):
    """Published by the cloud on ``shelfsense/<device_id>/ack``."""

    device_id: str
    highest_contiguous: int = Field(..., ge=0)
    stored: list[int] = Field(default_factory=list, description="Seqs stored since the last ack.")
    refused: list[Refusal] = Field(
        default_factory=list, description="Events refused for good since the last ack."
    )
