"""Shadow figures: what a rollout asks of its canary, what units report, what each unit did.

A rollout asks its canary units for ``shadow_windows`` live windows in shadow (stored
on the rollout, and in the desired state of each unit it is asked of, with the
minimum agreement the unit checks itself). A unit's report carries agreement per
head, the windows compared and the latency ratio. Each rollout unit keeps the last
state and reason it reported about the rollout's version, so that a rollout shows
what its units did also after they were put back on the version before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ADDED: dict[str, list[sa.Column[Any]]] = {
    "devices": [
        sa.Column("desired_shadow_windows", sa.Integer(), nullable=True),
        sa.Column("desired_min_shadow_agreement", sa.Float(), nullable=True),
    ],
    "device_reported": [
        sa.Column("shadow_heads", sa.JSON(), nullable=True),
        sa.Column("shadow_windows", sa.Integer(), nullable=True),
        sa.Column("latency_ratio", sa.Float(), nullable=True),
    ],
    "rollouts": [sa.Column("shadow_windows", sa.Integer(), nullable=True)],
    "rollout_units": [
        sa.Column("last_state", sa.String(16), nullable=True),
        sa.Column("last_reason", sa.String(500), nullable=True),
    ],
}


def upgrade() -> None:
    """Add the shadow and per-unit columns."""
    for table, columns in ADDED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(column)


def downgrade() -> None:
    """Drop them."""
    for table, columns in ADDED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
