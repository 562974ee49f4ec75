"""Request and response bodies of the model registry, units' OTA reports and rollouts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from cloud.schemas import ID_PATTERN, ApiModel
from models.wire_fleet import OtaReport

RolloutStatus = Literal["running", "paused", "completed", "aborted", "halted", "rolled_back"]
Version = Field(ge=0, le=2**31 - 1)


class ModelPublic(ApiModel):
    """A published model version."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    version: int
    target_name: str = Field(description="The TUF target path of its archive.")
    bytes: int = Field(description="Size of the archive.")
    sha256: str
    manifest: dict[str, Any] = Field(description="The bundle manifest, less its file list.")
    metrics: dict[str, Any]
    training: dict[str, Any] = Field(description="Windows and time range it was trained on.")
    created_at: datetime
    published_at: datetime


class ModelsPublic(ApiModel):
    """Published versions, newest first."""

    data: list[ModelPublic]
    count: int


ReportedCreate = OtaReport
"""What a unit says of its model update: the wire's :class:`models.wire_fleet.OtaReport`."""


class ReportedPublic(OtaReport):
    """A unit's latest report, with since when it is in that state."""

    device_id: str
    since: datetime
    updated_at: datetime


class GroupTag(ApiModel):
    """A group a unit belongs to (rollouts may target a group)."""

    group: str = Field(pattern=ID_PATTERN, max_length=64)


class RolloutCreate(ApiModel):
    """A rollout of a published version to the fleet or one group."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())

    model_version: int = Field(ge=0, le=2**31 - 1)
    phases: str = Field(
        "canary:2,10%,50%,100%",
        max_length=200,
        description="Comma-separated phases: `canary:N`, `N` units, or `P%` of the units.",
    )
    group: str | None = Field(None, pattern=ID_PATTERN, max_length=64)
    min_soak_s: float = Field(7200.0, ge=0, le=90 * 86400, description="Active this long first.")
    abort_failed: float = Field(
        0.05, ge=0, le=1, description="Abort when more than this share of units failed."
    )
    min_shadow_agreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Canary units must report at least this shadow agreement (their lowest "
        "head); below it a unit counts as failed.",
    )
    shadow_windows: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Canary units run the candidate in shadow on this many live windows "
        "before switching (default 200 when min_shadow_agreement is set, else 0: no shadow).",
    )
    max_labelled_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The canary promotes only when, on shadow windows that later got a label, "
        "the candidate's accuracy trails the current model's by at most this share per head.",
    )
    min_labelled_windows: int = Field(
        20, ge=1, le=1_000_000, description="Labelled shadow windows per head before judging."
    )


class ShadowFigures(ApiModel):
    """What one unit reported from running the candidate in shadow."""

    device_id: str
    agreement: float | None = Field(description="The lowest head's agreement.")
    heads: dict[str, float] = Field(default_factory=dict, description="Agreement per head.")
    windows: int | None = Field(description="Live windows compared.")
    latency_ratio: float | None = Field(description="Median inference time, candidate / current.")


class PhaseCounts(ApiModel):
    """How many units of one phase are in each OTA state."""

    phase: int
    name: str
    units: int
    states: dict[str, int] = Field(
        description="Units per state: not_started, pending, downloading, verifying, shadow, "
        "staged (switched, watching), active, failed, rolled_back; the last state each unit "
        "reported about the version, kept after a halt or roll back put it back."
    )
    reasons: dict[str, int] = Field(description="Failure and roll-back reasons, counted.")
    shadow: list[ShadowFigures] = Field(
        default_factory=list, description="Shadow figures of the units that reported them."
    )


class LabelledFigures(ApiModel):
    """Labelled shadow windows of one head and each model's accuracy on them."""

    windows: int
    current_accuracy: float | None
    candidate_accuracy: float | None


class RolloutPublic(ApiModel):
    """A rollout, its position and its units' states per phase."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    rollout_id: int
    model_version: int
    phases: str
    group: str | None
    min_soak_s: float
    abort_failed: float
    min_shadow_agreement: float | None = None
    shadow_windows: int | None = None
    max_labelled_drop: float | None = None
    min_labelled_windows: int | None = None
    labelled: dict[str, LabelledFigures] = Field(
        default_factory=dict,
        description="Per head, over the canary's shadow windows that later got a label.",
    )
    status: RolloutStatus
    phase: int = Field(description="Index of the phase being rolled out.")
    phase_started_at: datetime
    reason: str
    created_at: datetime
    updated_at: datetime
    units: int
    per_phase: list[PhaseCounts] = Field(default_factory=list)


class RolloutsPublic(ApiModel):
    """Rollouts, newest first."""

    data: list[RolloutPublic]
    count: int
