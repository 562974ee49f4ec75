"""The shapes the cloud API reads and writes, one family per entity.

As in the FastAPI full-stack template: ``XCreate`` is what a caller posts,
``XPublic`` what it gets back, ``XsPublic`` a list with ``data`` and ``count``.
Every model refuses unknown fields. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.wire import (
    DEVICE_ID_PATTERN,
    MAX_SAFE_INT,
    Text,
    WireInstant,
)

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
RoleName = Literal["unit", "backend", "operator"]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Instant = Annotated[WireInstant, AfterValidator(_aware)]
"""A time given by a caller: ISO 8601, naive means UTC, the year as written within 2000-2199."""


class ApiModel(BaseModel):
    """Base of API schemas: unknown fields, non-finite numbers and booleans for numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """``true`` is not the number 1 here, whatever lax parsing would make of it."""
        if isinstance(value, bool) and info.field_name is not None:
            ann = cls.model_fields[info.field_name].annotation
            if ann is not bool and bool not in get_args(ann):
                raise ValueError("a boolean is not accepted here")
        return value


class ErrorPublic(ApiModel):
    """Every error: a stable machine code, a message for people, the field at fault."""

    code: str = Field(..., examples=["event_from_future"])
    message: str = Field(..., examples=["event seq 12 is stamped 2031-01-01T00:00:00+00:00 …"])
    field: str | None = Field(None, examples=["events.3.wall_time"])
    details: list[dict[str, Any]] = Field(default_factory=list)


class HealthPublic(ApiModel):
    """Liveness, database reachability and, where this process runs one, MQTT ingest."""

    status: Literal["ok", "down"]
    database: Literal["ok", "unreachable"]
    dialect: str
    ingest: Literal["ok", "down", "off"] = Field(
        "off", description="This process's MQTT ingest worker (`off`: it runs none)."
    )
    detail: str | None = Field(None, description="What is down and why.")


# fleet -----------------------------------------------------------------------------------


class StoreCreate(ApiModel):
    """A store to register."""

    store_id: str = Field(..., pattern=ID_PATTERN, examples=["store-12"])
    name: Text = Field("", max_length=200, examples=["Main Street"])


class StorePublic(StoreCreate):
    """A registered store."""

    created_at: datetime


class StoresPublic(ApiModel):
    """A list of stores."""

    data: list[StorePublic]
    count: int


class BayCreate(ApiModel):
    """A bay (one unit's shelf section) of a store."""

    bay_id: str = Field(..., pattern=ID_PATTERN, examples=["bay-3"])
    name: Text = Field("", max_length=200)


class BayPublic(BayCreate):
    """A registered bay."""

    store_id: str
    created_at: datetime


class BaysPublic(ApiModel):
    """A list of bays."""

    data: list[BayPublic]
    count: int


class SlotCreate(ApiModel):
    """A product slot of a bay: which SKU sits on it and what one unit weighs."""

    slot: int = Field(..., ge=0, le=63, examples=[2])
    sku: Text = Field(..., min_length=1, max_length=64, examples=["SKU-000123"])
    unit_grams: float = Field(..., gt=0, le=100_000, examples=[410.0])


class SlotPublic(SlotCreate):
    """A registered slot."""

    store_id: str
    bay_id: str
    created_at: datetime


class SlotsPublic(ApiModel):
    """A list of slots."""

    data: list[SlotPublic]
    count: int


class DeviceCreate(ApiModel):
    """A unit to register, on one bay of one store."""

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN, examples=["unit-0007"])
    store_id: str = Field(..., pattern=ID_PATTERN, examples=["store-12"])
    bay_id: str = Field(..., pattern=ID_PATTERN, examples=["bay-3"])
    name: Text = Field("", max_length=200)


class DevicePublic(DeviceCreate):
    """A registered unit and what the cloud has stored of it."""

    created_at: datetime
    highest_contiguous: int = Field(0, description="All seqs 1..N of this unit are stored.")
    last_seen_at: datetime | None = None


class DevicesPublic(ApiModel):
    """A list of units."""

    data: list[DevicePublic]
    count: int


# keys ------------------------------------------------------------------------------------


def _unit_key_names_its_device(schema: dict[str, Any]) -> None:
    """State in the JSON schema what the validator checks: only a unit key names a device."""
    schema["allOf"] = [
        {
            "if": {"properties": {"role": {"const": "unit"}}, "required": ["role"]},
            "then": {"required": ["device_id"], "properties": {"device_id": {"type": "string"}}},
            "else": {"properties": {"device_id": {"type": "null"}}},
        }
    ]


class KeyCreate(ApiModel):
    """A key to make: a unit key names its registered device, other roles name none."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra=_unit_key_names_its_device
    )

    role: RoleName
    name: Text = Field("", max_length=200, examples=["backend-prod"])
    device_id: str | None = Field(None, pattern=DEVICE_ID_PATTERN)

    @model_validator(mode="after")
    def _device_for_unit_only(self) -> KeyCreate:
        if (self.role == "unit") != (self.device_id is not None):
            raise ValueError("a unit key needs device_id; other roles must not have one")
        return self


class KeyPublic(ApiModel):
    """A key as listed (never its secret)."""

    key_id: str
    role: RoleName
    name: str
    device_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    """A key just made, with its token: shown this once only."""

    token: str


class KeysPublic(ApiModel):
    """A list of keys."""

    data: list[KeyPublic]
    count: int


# reads -----------------------------------------------------------------------------------


class StockSlotPublic(ApiModel):
    """Units on one slot now, and when a unit last confirmed that figure.

    The figure is that of the highest ``seq`` the slot's unit has sent, whatever
    order its events arrived in.
    """

    store_id: str
    bay_id: str
    slot: int
    sku: str | None
    stock_units: int
    confirmed_at: datetime
    device_id: str
    seq: int


class StockPublic(ApiModel):
    """Stock per slot."""

    data: list[StockSlotPublic]
    count: int


class StockSkuPublic(ApiModel):
    """Units of one SKU in one store, summed over the slots a unit has reported.

    Every SKU registered on a slot is listed: ``stock_units`` is ``null`` until a unit
    has reported one of its slots (units report every slot's level at start and
    periodically). ``slots`` counts its slots (registered, or reported where a unit
    reports a slot that is not registered), ``reported_slots`` those with a figure: when
    fewer, the total covers only those. ``oldest_confirmed_at`` is when the stalest
    reported slot was last confirmed: the total is no fresher than that.
    """

    store_id: str
    sku: str
    stock_units: int | None
    slots: int
    reported_slots: int
    oldest_confirmed_at: datetime | None
    newest_confirmed_at: datetime | None


class StockSkusPublic(ApiModel):
    """Stock per store and SKU."""

    data: list[StockSkuPublic]
    count: int


class InterestHourPublic(ApiModel):
    """Shelf-interest of one SKU in one store during one hour.

    ``episodes`` are the shopper episodes that reached or handled one of its slots.
    """

    store_id: str
    sku: str
    hour: datetime
    episodes: int
    counts: dict[str, int] = Field(..., examples=[{"pass_by": 40, "glance": 12, "take": 3}])
    dwell_mean_s: float | None
    dwell_max_s: float | None
    touch_to_take: float | None = Field(
        ..., description="take / (touch + take): of the episodes that handled it, the share taken."
    )


class InterestBayHourPublic(ApiModel):
    """Shelf-interest at one bay during one hour: every episode, with or without a reach."""

    store_id: str
    bay_id: str
    hour: datetime
    episodes: int
    reached: int = Field(..., description="Episodes that reached or handled a slot of the bay.")
    counts: dict[str, int] = Field(..., examples=[{"pass_by": 40, "glance": 12, "take": 3}])
    dwell_mean_s: float | None
    dwell_max_s: float | None
    touch_to_take: float | None = Field(
        ..., description="take / (touch + take) over the bay's episodes."
    )


class InterestPublic(ApiModel):
    """Interest per SKU per hour (``data``) and per bay per hour (``bays``).

    An episode counts for each SKU whose slot the shopper reached or handled, once
    per SKU; a glance or pass-by without a reach counts for the bay only.
    """

    data: list[InterestHourPublic]
    count: int
    bays: list[InterestBayHourPublic] = Field(default_factory=list)


class EventPublic(ApiModel):
    """A stored event, in feed order (``id`` grows with arrival)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())

    id: int
    device_id: str
    seq: int
    wall_time: datetime
    received_at: datetime
    store_id: str
    bay_id: str
    slot: int | None
    sku: str | None
    kind: str
    label: str
    confidence: float
    units: int | None
    grams: float | None
    stock_units: int | None
    dwell_s: float | None
    episode: int | None
    model_version: int | None
    decided_by: str
    historical: bool


class FeedPage(ApiModel):
    """A page of the event feed; pass ``next_cursor`` back to continue."""

    data: list[EventPublic]
    count: int
    next_cursor: str = Field(..., description="Opaque; resume after the last event of this page.")


# labels ----------------------------------------------------------------------------------


class SaleCreate(ApiModel):
    """A POS sale reported by the backend."""

    store_id: str = Field(..., pattern=ID_PATTERN, examples=["store-12"])
    sku: Text = Field(..., min_length=1, max_length=64, examples=["SKU-000123"])
    quantity: int = Field(..., ge=1, le=10_000, examples=[2])
    sold_at: Instant = Field(..., description="When the till rang it up (UTC).")


class SalePublic(SaleCreate):
    """A stored sale and how many of its units matched removal events."""

    id: int
    matched_units: int
    matched_event_ids: list[int]


class CorrectionCreate(ApiModel):
    """Staff say what one event really was."""

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN)
    seq: int = Field(..., ge=1, le=MAX_SAFE_INT)
    label: str = Field(..., min_length=1, max_length=32, pattern=r"^[a-z_]+$", examples=["return"])
    note: Text = Field("", max_length=2000)


class CorrectionPublic(ApiModel):
    """A stored correction."""

    event_id: int
    device_id: str
    seq: int
    label: str
    previous_label: str
    source: Literal["staff"]
    note: str
