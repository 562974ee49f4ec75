"""Health interval: how often each unit says it sends health, so a silent HTTP unit turns offline.

A unit on MQTT has a last will; a unit on HTTP only has none, and is offline once it
missed ``MISSED_HEALTH_INTERVALS`` of its own health intervals. The unit states its
interval in each health report (``interval_s``); ``device_status`` keeps it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``device_status.health_interval_s``."""
    op.add_column("device_status", sa.Column("health_interval_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop ``device_status.health_interval_s``."""
    with op.batch_alter_table("device_status") as batch:
        batch.drop_column("health_interval_s")
