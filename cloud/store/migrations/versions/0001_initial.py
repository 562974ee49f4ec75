"""The first schema: fleet, keys, events, progress, current stock, sales, labels.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index of the first schema."""
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "bays",
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.store_id"), primary_key=True),
        sa.Column("bay_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "slots",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("bay_id", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("unit_grams", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.store_id"), nullable=False),
        sa.Column("bay_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("desired_model_version", sa.Integer(), nullable=True),
        sa.Column("desired_config", sa.JSON(), nullable=False),
        sa.Column("desired_updated_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("mqtt_hash", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("wall_time", sa.DateTime(), nullable=False),
        sa.Column("mono_time", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("bay_id", sa.String(64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=True),
        sa.Column("grams", sa.Float(), nullable=True),
        sa.Column("stock_units", sa.Integer(), nullable=True),
        sa.Column("dwell_s", sa.Float(), nullable=True),
        sa.Column("episode", sa.BigInteger(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(16), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.UniqueConstraint("device_id", "seq", name="uq_events_device_seq"),
    )
    op.create_index("ix_events_store_id_id", "events", ["store_id", "id"])
    op.create_index("ix_events_sku_id", "events", ["sku", "id"])
    op.create_index(
        "ix_events_kind_store_sku_time", "events", ["kind", "store_id", "sku", "wall_time"]
    )
    op.create_table(
        "device_progress",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("highest_contiguous", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "current_stock",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("bay_id", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("stock_units", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_current_stock_sku", "current_stock", ["sku"])
    op.create_table(
        "sales",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("sold_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("matched_units", sa.Integer(), nullable=False),
    )
    op.create_index("ix_sales_store_sku_time", "sales", ["store_id", "sku", "sold_at"])
    op.create_table(
        "labels",
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("sale_id", Id, sa.ForeignKey("sales.id"), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop everything the upgrade made."""
    for name in (
        "server_secrets",
        "labels",
        "sales",
        "current_stock",
        "device_progress",
        "events",
        "api_keys",
        "devices",
        "slots",
        "bays",
        "stores",
    ):
        op.drop_table(name)
