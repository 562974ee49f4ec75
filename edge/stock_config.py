"""The ``[stock]`` section of the unit config: how counts, levels and reports are kept.

Every key has a default, bounds and a description; unknown keys are refused like
everywhere else in the config. :class:`~edge.stock.StockBook` reads these values.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StockConfig(BaseModel):
    """Units per slot from the scale: count hysteresis, plausibility, level reports."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    report_interval_s: float = Field(
        default=900.0,
        ge=0,
        le=86_400,
        description="Report every slot's level (a 'level' event per slot) this often, sensor "
        "seconds; one report also goes out at start. 0 turns the periodic report off.",
    )
    count_band: float = Field(
        default=0.15,
        ge=0,
        le=0.45,
        description="The count moves only when the weight is more than half a unit plus this "
        "(in units) away from it, so a load near x.5 units does not flip the count.",
    )
    low_hysteresis_units: int = Field(
        default=1,
        ge=0,
        le=100,
        description="A low slot is ok again only above low_units plus this many units.",
    )
    capacity_margin: float = Field(
        default=1.5,
        ge=1.0,
        le=10.0,
        description="A count above capacity times this is implausible (flagged, not hidden).",
    )
    below_tare_units: float = Field(
        default=0.5,
        gt=0,
        le=10.0,
        description="A load this many units below the empty-slot tare is implausible "
        "(a tare taken with items on the slot, a drifting cell): counted 0 and flagged.",
    )
    foreign_max_s: float = Field(
        default=4 * 3600.0,
        gt=0,
        le=30 * 86_400,
        description="A foreign item (a 'misplaced' decision) still on its slot after this long "
        "is flagged: staff should remove it (and recount).",
    )
    moved_window_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="An addition matching an item taken from another slot of the bay this "
        "many sensor seconds before is that item moved (booked foreign, label 'misplaced').",
    )
    restock_units: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="A 'misplaced' decision the weight shows to be this many whole units of "
        "the slot's own SKU or more is booked as a 'restock' (fewer: a 'return').",
    )
