"""The ``[ota]`` section of a unit config: where the trusted TUF root lives, how long to watch."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from edge.ota.state import OtaSettings


class OtaConfig(BaseModel):
    """How the unit fetches, checks, switches to and watches a new model version."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(
        True, description="Follow the cloud's desired model version (needs a trusted root)."
    )
    trusted_root: str = Field(
        "tuf-root.json",
        min_length=1,
        description="The TUF root the unit trusts (from its claim), relative to unit.data_dir.",
    )
    metadata_dir: str = Field(
        "tuf", min_length=1, description="TUF metadata cache, relative to unit.data_dir."
    )
    state_file: str = Field(
        "ota.json", min_length=1, description="Where the OTA state is kept, in unit.data_dir."
    )
    watch_s: float = Field(
        600.0, ge=0, le=7 * 86400, description="After a switch, watch this long before active."
    )
    max_errors: int = Field(
        3, ge=1, le=10_000, description="Inference errors while watching that roll back."
    )
    max_boots: int = Field(
        3, ge=1, le=100, description="Agent restarts while watching that roll back."
    )
    retry_s: float = Field(
        60.0, ge=0.1, le=86400, description="Wait before retrying a cut or stalled download."
    )
    collapse_share: float = Field(
        0.95,
        gt=0.5,
        le=1,
        description="While watching, one label deciding this share of a head's windows "
        "(where the model before did not) rolls back.",
    )
    min_windows: int = Field(
        50, ge=1, le=1_000_000, description="Windows of a head needed to judge its distribution."
    )
    shadow_max_s: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        description="A shadow run asked by the cloud ends after this long even with fewer "
        "live windows than asked (judged on what it compared).",
    )
    latency_factor: float = Field(
        3.0,
        gt=1,
        le=1000,
        description="While watching, a median inference time per window above this many "
        "times the previous model's rolls back (reason latency).",
    )
    latency_windows: int = Field(
        50, ge=1, le=100_000, description="Windows of the new model the latency median needs."
    )
    timeout_s: int = Field(30, ge=1, le=600, description="Socket timeout of a download.")
    max_download_kib_s: float = Field(
        0.0,
        ge=0,
        le=1_000_000,
        description="Cap on a model download, KiB per second, so an update leaves the "
        "store's uplink to the events (0: no cap).",
    )
    watch_poll_s: float = Field(
        5.0, gt=0, le=3600, description="How often the decision worker looks for a new bundle."
    )

    def settings(self) -> OtaSettings:
        """The decision settings of :class:`edge.ota.state.OtaState`."""
        return OtaSettings(
            watch_s=self.watch_s,
            max_errors=self.max_errors,
            max_boots=self.max_boots,
            retry_s=self.retry_s,
            collapse_share=self.collapse_share,
            min_windows=self.min_windows,
            shadow_max_s=self.shadow_max_s,
            latency_factor=self.latency_factor,
            latency_windows=self.latency_windows,
        )
