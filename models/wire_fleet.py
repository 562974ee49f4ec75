"""What the cloud and a unit say about the unit itself: desired state, OTA and calibration reports, setup.

The cloud writes :class:`DesiredState` (retained on ``shelfsense/<device_id>/desired``
and at ``GET /v1/devices/{id}/desired``); the unit reads it and answers with
:class:`OtaReport` on ``…/reported`` (or ``POST /v1/devices/{id}/reported``), sends its
:class:`CalibrationReport` and, in setup mode, a :class:`SetupAnnouncement`. Events,
acks and health are in :mod:`models.wire`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from models.wire import DEVICE_ID_PATTERN, MAX_FEATURE_TEXT, TEXT_PATTERN, Text, WireModel

# desired state and OTA reports ---------------------------------------------------------

MAX_VERSION = 2**31 - 1
ConfigValue = (
    float
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[str, StringConstraints(max_length=MAX_FEATURE_TEXT, pattern=TEXT_PATTERN)]
    | bool
    | None
)
ConfigKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){1,3}$")]
"""A dotted config key as in the unit's TOML: ``section.key`` (``sync.batch_size``)."""
ConfigOverrides = Annotated[
    dict[ConfigKey, ConfigValue],
    Field(max_length=64, json_schema_extra={"additionalProperties": False}),
]
"""At most 64 config overrides, each a dotted key and a scalar value."""


class DesiredSpec(WireModel):
    """What an operator (or a rollout) sets for a unit: the model version and config overrides.

    ``config`` is flat: dotted keys (``{"sync.batch_size": 100}``) with scalar values.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())

    model_version: int | None = Field(
        None, ge=0, le=MAX_VERSION, description="Model bundle version to run.", examples=[7]
    )
    config: ConfigOverrides = Field(default_factory=dict)
    shadow_windows: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Before switching to model_version, run it in shadow beside the current "
        "model on this many live windows (None or 0: switch without shadowing).",
    )
    min_shadow_agreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="In shadow, the lowest agreement of any head the unit accepts; below it "
        "the unit refuses the version itself.",
    )


class DesiredState(DesiredSpec):
    """The desired state of one unit as the cloud stores, serves and publishes it.

    The one document on ``shelfsense/<device_id>/desired`` (retained) and the answer of
    ``GET /v1/devices/<id>/desired``. ``updated_at`` orders documents: a unit ignores
    one older than the one it applied.
    """

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN, description="Unit it is meant for.")
    updated_at: datetime | None = Field(None, description="When the cloud last changed it (UTC).")


OtaPhase = Literal[
    "pending", "downloading", "verifying", "staged", "shadow", "active", "failed", "rolled_back"
]
"""Where a unit is with a model version: fetched, checked, switched to, or refused."""
OTA_PHASES: tuple[str, ...] = OtaPhase.__args__  # type: ignore[attr-defined]


class OtaReport(WireModel):
    """What a unit says of its model update (``POST /v1/devices/<id>/reported``).

    ``version`` is the version this is about (the one being fetched, the one now
    active, or the one that failed or rolled back); ``previous_version`` is the one
    that decided before it (after ``failed`` or ``rolled_back``, the one deciding again).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())

    state: OtaPhase
    version: int | None = Field(
        None, ge=0, le=MAX_VERSION, description="The version this is about."
    )
    previous_version: int | None = Field(None, ge=0, le=MAX_VERSION)
    progress: float | None = Field(default=None, ge=0, le=1, description="Download progress, 0..1.")
    shadow_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="In shadow: share of live windows where the candidate agreed with the "
        "current model, the lowest of its heads (kept for the version until a new figure "
        "comes).",
    )
    shadow_heads: dict[Literal["interest", "stock"], Annotated[float, Field(ge=0, le=1)]] | None = (
        Field(default=None, description="In shadow: agreement per head (interest, stock).")
    )
    shadow_windows: int | None = Field(
        default=None, ge=0, le=10_000_000, description="In shadow: live windows compared."
    )
    latency_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1e6,
        description="In shadow: median inference time per window, candidate / current model.",
    )
    reason: Text = Field("", max_length=500, description="Why it failed or rolled back.")


# calibration --------------------------------------------------------------------------

MAX_CALIBRATED_SLOTS = 64
MAX_RAW_COUNTS = 2**31  # a load cell's raw reading (24-bit HX711, or an MCU's sum of them)


class SlotCalibration(WireModel):
    """How one slot's load cell was calibrated: its zero, its scale, the weights used."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    slot: int = Field(..., ge=0, le=255, description="Slot index on the bay.")
    channel: int = Field(..., ge=0, le=255, description="Load-cell channel weighing it.")
    sku: Text = Field("", max_length=64, description="The SKU the unit's config puts there.")
    offset_counts: float = Field(
        ..., ge=-MAX_RAW_COUNTS, le=MAX_RAW_COUNTS, description="Raw reading, tray empty (tare)."
    )
    counts_per_gram: float = Field(..., gt=0, le=1e6, description="Scale: raw counts per gram.")
    known_grams: float | None = Field(
        None, gt=0, lt=100_000, description="The known weight that set the scale."
    )
    check_grams: float | None = Field(
        None, gt=0, lt=100_000, description="The second weight placed to check linearity."
    )
    check_read_grams: float | None = Field(
        None, ge=-1e6, le=1e6, description="What the slot read for the check weight."
    )
    calibrated_at: float = Field(..., ge=0, le=1e10, description="Unit wall clock, Unix s.")


class CalibrationReport(WireModel):
    """A unit's calibration, every slot, as it reports it (``PUT /v1/devices/{id}/calibration``).

    The whole state, not a change: the latest report replaces the one before. A slot
    absent from it has not been calibrated on this unit.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    at: float = Field(..., ge=0, le=1e10, description="Unit wall clock, Unix seconds.")
    slots: list[SlotCalibration] = Field(
        default_factory=list,
        max_length=MAX_CALIBRATED_SLOTS,
        description="One entry per slot: a report naming a slot twice is refused (422).",
    )

    @model_validator(mode="after")
    def _one_entry_per_slot(self) -> CalibrationReport:
        seen = [s.slot for s in self.slots]
        if len(seen) != len(set(seen)):
            raise ValueError("each slot appears at most once")
        return self


class SetupAnnouncement(WireModel):
    """A unit's setup page while it is open (``PUT /v1/devices/{id}/setup``).

    A claimed unit in setup mode tells the cloud where its page is and its one-time PIN,
    so operators can read them out to store staff; the unit withdraws it when setup
    ends, and the cloud stops showing it after ``until`` in any case.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    url: str = Field(
        ...,
        max_length=200,
        pattern=r"^https?://[A-Za-z0-9.:\[\]_-]+(/[!-~]*)?$",  # ASCII: one meaning in every regex dialect
        description="The page's address on the store network.",
    )
    pin: str = Field(..., pattern=r"^[0-9]{6}$", description="This setup mode's one-time PIN.")
    until: float = Field(..., ge=0, le=1e10, description="Setup mode ends by then (Unix s).")
