"""Interest read index: a store's interest over a time window read from the index alone.

``/v1/interest`` for a whole store (no ``sku``) filters on kind, store and a
window of wall time. ``ix_events_kind_store_sku_time`` puts the SKU before the
time, so such a read walked every interest event the store ever sent and fetched
each row: its cost grew with history. This index leads with kind, store and wall
time and carries every column the interest query reads, so the read touches the
window's entries and nothing else.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ["kind", "store_id", "wall_time", "bay_id", "sku", "label", "device_id",
           "episode", "seq", "dwell_s", "slot"]  # fmt: skip


def upgrade() -> None:
    """Add ``ix_events_interest_read``."""
    op.create_index("ix_events_interest_read", "events", COLUMNS)


def downgrade() -> None:
    """Drop ``ix_events_interest_read``."""
    op.drop_index("ix_events_interest_read", table_name="events")
