"""Interest per hour kept at ingest: reads cost the hours they ask for, not history.

``/v1/interest`` grouped a window of a store's interest events twice per read
(episodes per SKU and per bay), about 200 ms for a day of a busy store however
little had changed. Ingest now keeps the sums per store, SKU or bay, hour and label
(:mod:`cloud.interest_rollup`), finding an episode's earlier events through a
partial index; this migration creates the tables and the index, fills the tables
from the events already stored, keeps a version per store for cached answers, and drops
``ix_events_interest_read`` (0009), which only the old read used and every
ingested event paid for.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloud.interest_rollup import rebuild

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INTEREST_EPISODES = sa.text("kind = 'interest' AND episode IS NOT NULL")
READ_INDEX = ["kind", "store_id", "wall_time", "bay_id", "sku", "label", "device_id",
              "episode", "seq", "dwell_s", "slot"]  # fmt: skip


def _hours(name: str, *key: sa.Column) -> None:
    op.create_table(
        name,
        *key,
        sa.Column("label", sa.String(32), primary_key=True),
        sa.Column("episodes", sa.BigInteger(), nullable=False),
        sa.Column("dwell_sum", sa.Float(), nullable=False),
        sa.Column("dwell_n", sa.BigInteger(), nullable=False),
        sa.Column("dwell_max", sa.Float(), nullable=True),
        sa.Column("at_slot", sa.BigInteger(), nullable=False),
    )


def upgrade() -> None:
    """Create the hours tables and the episode index, fill the tables from the stored
    events, drop the old read index."""
    op.create_index(
        "ix_events_interest_episode",
        "events",
        ["device_id", "episode"],
        sqlite_where=INTEREST_EPISODES,
        postgresql_where=INTEREST_EPISODES,
    )
    _hours(
        "interest_sku_hours",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("bay_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_interest_sku_hours_store_hour", "interest_sku_hours", ["store_id", "hour"])
    op.create_index("ix_interest_sku_hours_hour", "interest_sku_hours", ["hour"])
    _hours(
        "interest_bay_hours",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("bay_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_interest_bay_hours_hour", "interest_bay_hours", ["hour"])
    op.create_table(
        "interest_versions",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    rebuild(op.get_bind())
    op.drop_index("ix_events_interest_read", table_name="events")


def downgrade() -> None:
    """Drop the interest tables; bring back the read index."""
    op.create_index("ix_events_interest_read", "events", READ_INDEX)
    op.drop_table("interest_versions")
    op.drop_table("interest_bay_hours")
    op.drop_table("interest_sku_hours")
    op.drop_index("ix_events_interest_episode", table_name="events")
