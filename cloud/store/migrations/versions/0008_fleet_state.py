"""Fleet state: each unit's online status, its alarms with their history, health over time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``device_status``, ``device_alarms`` and ``health_samples``."""
    op.create_table(
        "device_status",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
        sa.Column("health_at", sa.DateTime(), nullable=True),
        sa.Column("agent_version", sa.String(32), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(8), nullable=True),
        sa.Column("buffer_depth", sa.BigInteger(), nullable=True),
        sa.Column("oldest_unsynced_age_s", sa.Float(), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=True),
    )
    op.create_table(
        "device_alarms",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_device_alarms_device", "device_alarms", ["device_id", "cleared_at"])
    op.create_index("ix_device_alarms_raised", "device_alarms", ["raised_at"])
    op.create_table(
        "health_samples",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("at", sa.DateTime(), primary_key=True),
        sa.Column("buffer_depth", sa.BigInteger(), nullable=True),
        sa.Column("oldest_unsynced_age_s", sa.Float(), nullable=True),
        sa.Column("alarms", sa.Integer(), nullable=False),
        sa.Column("down", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    """Drop the fleet state tables."""
    op.drop_table("health_samples")
    op.drop_index("ix_device_alarms_raised", table_name="device_alarms")
    op.drop_index("ix_device_alarms_device", table_name="device_alarms")
    op.drop_table("device_alarms")
    op.drop_table("device_status")
