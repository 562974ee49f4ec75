"""Shadow labels: the candidate model's version and label on events decided in shadow.

While a unit runs a candidate beside its current model, each event carries what the
candidate decided (``ShelfEvent.shadow``); labels that arrive later score both models
on the same windows. A rollout may require the candidate's labelled accuracy to be
not worse than the current model's (``rollouts.max_labelled_drop``, with
``min_labelled_windows`` per head before judging).

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
    op.add_column("rollouts", sa.Column("max_labelled_drop", sa.Float(), nullable=True))
    op.add_column("rollouts", sa.Column("min_labelled_windows", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop ``events.shadow_version`` and ``events.shadow_label``."""
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("min_labelled_windows")
        batch.drop_column("max_labelled_drop")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("shadow_label")
        batch.drop_column("shadow_version")
