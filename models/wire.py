"""What travels between a unit and the cloud, over HTTP and MQTT.

A unit sends :class:`EventBatch` (HTTP body, gzip JSON) or one :class:`ShelfEvent`
per MQTT message on ``shelfsense/<device_id>/events``. The cloud answers with
:class:`BatchAck` (HTTP) or publishes :class:`MqttAck` on ``shelfsense/<device_id>/ack``:
the seqs it has *durably stored*. A unit drops a row from its outbox only on that.
Events are idempotent on ``(device_id, seq)``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from models.labels import INTEREST_LABELS, STOCK_LABELS

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ID_PATTERN = DEVICE_ID_PATTERN  # store and bay ids, as registered in the cloud
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # printable: no NUL, no control characters
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # feature names
INSTANT_PATTERN = (
    r"^2[01][0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$"
)
"""A time as a caller writes it: ISO 8601, year 2000-2199 as written."""
MIN_YEAR, MAX_YEAR = 2000, 2199
MAX_SAFE_INT = 2**53 - 1  # seqs, episodes: exact in every JSON parser (floats included)
MAX_BATCH_EVENTS = 1000
MAX_WINDOW_ITEMS = 64  # presences, changes or slots in one uploaded window
MAX_EVENT_BYTES = 65_536  # one event as an MQTT message (the largest valid one is ~40 KB)
MAX_SHOPPERS = 20  # shoppers the camera counts in one window (more are reported as this)
MAX_FEATURE_TEXT = 256
MAX_HEALTH_BYTES = MAX_EVENT_BYTES  # one health report as an MQTT message or HTTP body
VERSION_PATTERN = r"^[0-9A-Za-z.+_-]{1,32}$"  # an agent version (PEP 440 / semver text)
LEVEL_LABELS: tuple[str, ...] = ("ok", "low", "out")
KIND_LABELS: dict[str, tuple[str, ...]] = {
    "interest": INTEREST_LABELS,
    "stock": STOCK_LABELS,
    "level": LEVEL_LABELS,
}
"""The labels an event of each kind may carry."""

EventKind = Literal["interest", "stock", "level"]
Decider = Literal["model", "rules"]
Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
"""A string without NUL or control characters (no column or log line can be corrupted by it)."""
FeatureKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
FeatureValue = (
    float
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[str, StringConstraints(max_length=MAX_FEATURE_TEXT, pattern=TEXT_PATTERN)]
    | bool
    | None
)


_INSTANT_RE = re.compile(INSTANT_PATTERN)


FeatureMap = Annotated[
    dict[FeatureKey, FeatureValue],
    Field(max_length=64, json_schema_extra={"additionalProperties": False}),
]
"""A compact numeric summary: at most 64 named values (names as :data:`KEY_PATTERN`)."""
ALL_LABELS: tuple[str, ...] = tuple(dict.fromkeys(lb for lbs in KIND_LABELS.values() for lb in lbs))


def _label_per_kind(schema: dict[str, Any]) -> None:
    """State in the JSON schema which labels each kind allows (its own and a shadowing
    candidate's), and that only interest events count shoppers (as the validator checks)."""
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {
                "properties": {
                    "label": {"enum": list(labels)},
                    "shadow": {"properties": {"label": {"enum": list(labels)}}},
                    **({} if kind == "interest" else {"shoppers": {"type": "null"}}),
                }
            },
        }
        for kind, labels in KIND_LABELS.items()
    ]


def _instant_text(value: Any) -> Any:
    """Only a datetime or an ISO 8601 string as :data:`INSTANT_PATTERN` states is a time."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _INSTANT_RE.fullmatch(value):
        return value
    raise ValueError(
        f"a time is an ISO 8601 string with a year in {MIN_YEAR}-{MAX_YEAR}, "
        "e.g. 2026-11-22T14:03:11Z"
    )


def _instant_in_bounds(value: datetime) -> datetime:
    """Refuse a time whose year, as written, is outside 2000-2199 (no overflow converting it)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"time must be within the years {MIN_YEAR}-{MAX_YEAR}")
    return value


WireInstant = Annotated[
    datetime,
    BeforeValidator(_instant_text),
    AfterValidator(_instant_in_bounds),
    Field(json_schema_extra={"pattern": INSTANT_PATTERN}),
]
"""A wall-clock time on the wire: ISO 8601, years 2000-2199 as written; naive means UTC."""


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

    zone: str = Field(..., min_length=1, max_length=32, pattern=KEY_PATTERN, examples=["bay"])
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

    bay: str = Field(..., pattern=ID_PATTERN)
    episode: int = Field(..., ge=0, le=MAX_SAFE_INT)
    t_start: float = _time()
    t_end: float = _time()
    hour: int = Field(..., ge=0, le=23)
    presence: WirePresence | None = None
    reaches: list[WirePresence] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    changes: list[WireChange] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    slots: list[WireSlotContext] = Field(default_factory=list, max_length=MAX_WINDOW_ITEMS)
    neighbours: int = Field(0, ge=0, le=1_000_000)


class WireShadow(WireModel):
    """What the candidate model decided on the same window while it ran in shadow.

    A field of its own rather than entries in ``features``: features are the model's
    inputs and go into training rows, and a candidate's answer must never become an
    input; a typed object also gets the same taxonomy check as ``label`` (done by
    :class:`ShelfEvent`, which knows the kind). Bounded: two scalars.
    """

    version: int = Field(..., ge=0, le=2**31 - 1, description="The candidate's model version.")
    label: str = Field(
        ...,
        min_length=1,
        max_length=32,
        description="The candidate's label, from the taxonomy of the event's kind.",
        json_schema_extra={"enum": list(ALL_LABELS)},
    )


class ShelfEvent(WireModel):
    """One decision of a unit: shelf-interest of a presence episode, a stock event, or a level.

    ``seq`` is per device, starts at 1 and only grows (it survives restarts).
    ``label`` is from the taxonomy of ``kind`` (interest / stock) or, for ``level``,
    one of ``ok``, ``low``, ``out``. ``features`` is a compact numeric summary (never pixels);
    ``window`` is what the decision was made on (times, grams, camera episodes — no pixels).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_label_per_kind)

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN, examples=["unit-0007"])
    seq: int = Field(..., ge=1, le=MAX_SAFE_INT, examples=[1042])
    wall_time: WireInstant = Field(
        ..., description="Wall-clock time of the decision (UTC; years 2000-2199)."
    )
    mono_time: float = Field(..., ge=0, le=1e10, description="Unit monotonic clock, seconds.")
    store: str = Field(
        ..., pattern=ID_PATTERN, description="The unit's registered store.", examples=["store-12"]
    )
    bay: str = Field(
        ..., pattern=ID_PATTERN, description="The unit's registered bay.", examples=["bay-3"]
    )
    slot: int | None = Field(None, ge=0, le=63)
    sku: Text | None = Field(None, min_length=1, max_length=64, examples=["SKU-000123"])
    kind: EventKind
    label: str = Field(
        ...,
        min_length=1,
        max_length=32,
        description="From the taxonomy of ``kind`` (``models.labels``; ``ok``/``low``/``out`` for levels).",
        json_schema_extra={"enum": list(ALL_LABELS)},
        examples=["removal"],
    )
    confidence: float = Field(..., ge=0.0, le=1.0)
    units: int | None = Field(None, ge=-10_000, le=10_000, description="Signed units moved.")
    grams: float | None = Field(None, ge=-1e6, le=1e6, description="Signed grams moved.")
    stock_units: int | None = Field(
        None, ge=-10_000, le=100_000, description="Units on the slot after."
    )
    dwell_s: float | None = Field(None, ge=0, le=86_400)
    shoppers: int | None = Field(
        None,
        ge=0,
        le=MAX_SHOPPERS,
        description="Interest events: shoppers the camera saw in the window. 2 or more: "
        "people it could not tell apart, and the label is the window's, not one person's.",
    )
    episode: int | None = Field(
        None, ge=0, le=MAX_SAFE_INT, description="Window id linking events of one episode."
    )
    model_version: int | None = Field(None, ge=0, le=2**31 - 1)
    decided_by: Decider = "rules"
    historical: bool = Field(False, description="Sent from the backlog after an outage.")
    features: FeatureMap = Field(default_factory=dict)
    window: WireWindow | None = Field(
        None, description="The window decided (first event of each window only), for training."
    )
    shadow: WireShadow | None = Field(
        None, description="The candidate's decision on this window, while one runs in shadow."
    )

    @model_validator(mode="after")
    def _label_of_kind(self) -> ShelfEvent:
        if self.label not in KIND_LABELS[self.kind]:
            known = ", ".join(KIND_LABELS[self.kind])
            raise ValueError(f"label {self.label!r} is not a {self.kind} label ({known})")
        if self.shadow is not None and self.shadow.label not in KIND_LABELS[self.kind]:
            known = ", ".join(KIND_LABELS[self.kind])
            raise ValueError(
                f"shadow.label {self.shadow.label!r} is not a {self.kind} label ({known})"
            )
        if self.shoppers is not None and self.kind != "interest":
            raise ValueError(f"shoppers is for interest events, not {self.kind}")
        return self


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

    seq: int = Field(..., ge=1, le=MAX_SAFE_INT)
    reason: str = Field(..., max_length=500)


class MqttAck(WireModel):
    """Published by the cloud on ``shelfsense/<device_id>/ack``."""

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN)
    highest_contiguous: int = Field(..., ge=0)
    stored: list[int] = Field(default_factory=list, description="Seqs stored since the last ack.")
    refused: list[Refusal] = Field(
        default_factory=list, description="Events refused for good since the last ack."
    )


class HealthComponent(WireModel):
    """The state of one part of a unit (``loadcells``, ``loadcell_link``, ``camera`` …)."""

    ok: bool
    detail: Text = Field("", max_length=200)


class HealthAlarm(WireModel):
    """A raised alarm: since when (unit wall clock, Unix seconds) and why."""

    since: float = Field(..., ge=0, le=1e10)
    detail: Text = Field("", max_length=200)


_KEYED: dict[str, Any] = {"additionalProperties": False}  # keys only as KEY_PATTERN states


class HealthReport(WireModel):
    """A unit's health as it reports it to the cloud (``PUT /v1/devices/{id}/health``).

    ``alarms`` are the alarms raised now (``loadcell_link_down``, ``camera_down``,
    ``buffer_full`` …); an alarm absent from a report has cleared. The same body is
    published on ``shelfsense/<device_id>/health``. The figures after ``counters``
    (versions, outbox) are optional: a unit that does not know one leaves it out.
    """

    at: float = Field(..., ge=0, le=1e10, description="Unit wall clock, Unix seconds.")
    alarms: Annotated[
        dict[FeatureKey, HealthAlarm], Field(max_length=64, json_schema_extra=_KEYED)
    ] = Field(default_factory=dict)
    components: Annotated[
        dict[FeatureKey, HealthComponent], Field(max_length=64, json_schema_extra=_KEYED)
    ] = Field(default_factory=dict)
    counters: Annotated[
        dict[FeatureKey, Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]],
        Field(max_length=256, json_schema_extra=_KEYED),
    ] = Field(default_factory=dict)
    agent_version: str | None = Field(
        None, pattern=VERSION_PATTERN, description="The agent's version.", examples=["0.1.0"]
    )
    model_version: int | None = Field(
        None, ge=0, le=2**31 - 1, description="The model bundle deciding now (None: rules)."
    )
    decided_by: Decider | None = Field(None, description="What decides now: model or rules.")
    buffer_depth: int | None = Field(
        None, ge=0, le=MAX_SAFE_INT, description="Events in the outbox not yet acked by the cloud."
    )
    oldest_unsynced: float | None = Field(
        None, ge=0, le=1e10, description="Unit wall clock of the oldest event not yet acked."
    )
    last_sync: float | None = Field(
        None, ge=0, le=1e10, description="Unit wall clock of the last batch the cloud acked."
    )
    interval_s: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="How often the unit sends health (its `health.interval_s`): a unit on HTTP "
        "only is offline once it missed four of them.",
    )
