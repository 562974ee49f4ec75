"""Event shadow: the candidate model's version and label on events decided in shadow.

While a unit runs a candidate beside its current model, each event carries what the
candidate decided (``ShelfEvent.shadow``); labels that arrive later score both models
on the same windows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``events.shadow_version`` and ``events.shadow_label``."""
    op.add_column("events", sa.Column("shadow_version", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("shadow_label", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop ``events.shadow_version`` and ``events.shadow_label``."""
    with op.batch_alter_table("events") as batch:
        batch.drop_column("shadow_label")
        batch.drop_column("shadow_version")
