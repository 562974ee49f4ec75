"""An index of the events decided while a candidate ran in shadow, by its version.

The rollouts page and the labelled gate read a candidate's shadowed events joined
with their labels; without this index a database may walk every event of the
rollout's units to find them. Partial: only shadowed events (few) are in it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

WHERE = sa.text("shadow_version IS NOT NULL")


def upgrade() -> None:
    """Create ``ix_events_shadow_version``."""
    op.create_index(
        "ix_events_shadow_version",
        "events",
        ["shadow_version"],
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    """Drop ``ix_events_shadow_version``."""
    op.drop_index("ix_events_shadow_version", table_name="events")
