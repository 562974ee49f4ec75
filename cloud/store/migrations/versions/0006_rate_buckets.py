"""Rate buckets: per-key rate limits shared by every API process on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``rate_buckets``: tokens left and when they were counted, per bucket name."""
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``rate_buckets``."""
    op.drop_table("rate_buckets")
