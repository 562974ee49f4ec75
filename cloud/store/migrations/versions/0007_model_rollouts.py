"""Model rollouts: the model registry, device groups, units' OTA reports, rollouts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``model_versions``, ``device_groups``, ``device_reported``, ``rollouts``, ``rollout_units``."""
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("target_name", sa.String(128), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "device_groups",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("group_name", sa.String(64), primary_key=True),
    )
    op.create_index("ix_device_groups_group", "device_groups", ["group_name"])
    op.create_table(
        "device_reported",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("shadow_agreement", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("rollout_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_version",
            sa.Integer(),
            sa.ForeignKey("model_versions.version"),
            nullable=False,
        ),
        sa.Column("phases", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=True),
        sa.Column("min_soak_s", sa.Float(), nullable=False),
        sa.Column("abort_failed", sa.Float(), nullable=False),
        sa.Column("min_shadow_agreement", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("phase_started_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "rollout_units",
        sa.Column(
            "rollout_id", sa.Integer(), sa.ForeignKey("rollouts.rollout_id"), primary_key=True
        ),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("touched_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    """Drop the rollout tables."""
    op.drop_table("rollout_units")
    op.drop_table("rollouts")
    op.drop_table("device_reported")
    op.drop_index("ix_device_groups_group", table_name="device_groups")
    op.drop_table("device_groups")
    op.drop_table("model_versions")
