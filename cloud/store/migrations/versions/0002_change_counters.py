"""Change counters: a number that grows whenever a derived table changes.

Readers compare it to decide whether a cached answer (and its ETag) still
holds, without reading the table itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``change_counters`` with the ``stock`` counter at 0."""
    table = op.create_table(
        "change_counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"name": "stock", "value": 0}])


def downgrade() -> None:
    """Drop ``change_counters``."""
    op.drop_table("change_counters")
