"""The ``[buffer]`` section of the unit config: where the outbox lives and how big it may grow.

Kept free of imports from :mod:`edge.config` so that module can import it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OnFull = Literal["drop_new", "evict_unsynced_oldest"]
Synchronous = Literal["NORMAL", "FULL"]


class BufferConfig(BaseModel):
    """The SQLite outbox: file, durability, retention and the policy when it is full."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    file: str = Field(
        default="buffer.db", min_length=1, description="Database file, relative to unit.data_dir."
    )
    synchronous: Synchronous = Field(
        default="FULL",
        description=(
            "SQLite synchronous level in WAL mode. FULL fsyncs the WAL at every commit, so a"
            " committed event survives power loss; NORMAL survives a process crash only."
        ),
    )
    keep_synced_days: float = Field(
        default=7.0, ge=0, le=3650, description="Synced rows are kept this many days, then deleted."
    )
    max_mb: float = Field(
        default=256.0, gt=0, le=1_000_000, description="Hard cap on the database's used pages, MB."
    )
    on_full: OnFull = Field(
        default="drop_new",
        description=(
            "When the cap still binds after evicting every synced row: drop_new (new events"
            " are dropped and counted) or evict_unsynced_oldest (oldest unsent events are"
            " deleted and counted). Both raise the buffer_full alarm."
        ),
    )
    hold_max_events: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Events held in memory while the disk is full; beyond this they are dropped.",
    )
    retry_full_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often to retry writing after 'disk full'."
    )
    seq_reserve: int = Field(
        default=1000,
        ge=1,
        le=10_000_000,
        description=(
            "Seqs reserved ahead in the side file, so a replaced corrupt database never"
            " reuses a seq."
        ),
    )
