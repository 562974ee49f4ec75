"""Device health: the latest health report of each unit, with its alarms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``device_health``, one row per unit."""
    op.create_table(
        "device_health",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``device_health``."""
    op.drop_table("device_health")
