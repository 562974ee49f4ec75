"""Windows: the event window a unit decided on, uploaded with the first event of it.

Kept apart from ``events`` so the tables the backend reads stay narrow; training
reads them joined (``cloud.training_data``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``windows`` keyed by the carrying event's ``(device_id, seq)``."""
    op.create_table(
        "windows",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("body", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``windows``."""
    op.drop_table("windows")
