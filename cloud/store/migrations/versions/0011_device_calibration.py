"""Device calibration and setup: each unit's latest calibration, and its open setup page.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``device_calibration`` and ``device_setup``, one row per unit each."""
    op.create_table(
        "device_calibration",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    op.create_table(
        "device_setup",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(200), nullable=False),
        sa.Column("pin", sa.String(6), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``device_setup`` and ``device_calibration``."""
    op.drop_table("device_setup")
    op.drop_table("device_calibration")
