"""The tables of the cloud store (SQLAlchemy Core), mirrored by the Alembic migrations.

Times are UTC, stored naive (``DateTime`` without zone) so SQLite and PostgreSQL
compare them the same way; :class:`UtcDateTime` puts the zone back on read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


_ZERO = timedelta(0)


def utc_naive(value: datetime) -> datetime:
    """``value`` in UTC without tzinfo (naive values are taken as UTC already)."""
    if value.tzinfo is None:
        return value
    if value.utcoffset() == _ZERO:  # already UTC (the common case): no conversion
        return value.replace(tzinfo=None)
    return value.astimezone(UTC).replace(tzinfo=None)


SQLITE_TIME_SEP = " "  # SQLAlchemy stores DateTime in SQLite as 'YYYY-MM-DD HH:MM:SS.ffffff'


def driver_time(value: datetime, dialect: str) -> Any:
    """A UTC time as the DB-API driver should get it (SQLite: SQLAlchemy's text format)."""
    naive = utc_naive(value)
    return naive.isoformat(SQLITE_TIME_SEP, "microseconds") if dialect == "sqlite" else naive


def copy_rows(conn: Any, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY … FROM STDIN`` ``rows`` through a PostgreSQL connection's driver."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC instant: stored naive, read back with ``tzinfo=UTC``."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_naive(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrement needs INTEGER

stores = Table(
    "stores",
    metadata,
    Column("store_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

bays = Table(
    "bays",
    metadata,
    Column("store_id", String(64), ForeignKey("stores.store_id"), primary_key=True),
    Column("bay_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

slots = Table(
    "slots",
    metadata,
    Column("store_id", String(64), primary_key=True),
    Column("bay_id", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("unit_grams", Float, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("store_id", String(64), ForeignKey("stores.store_id"), nullable=False),
    Column("bay_id", String(64), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("desired_model_version", Integer, nullable=True),
    Column("desired_config", JSON, nullable=False, default=dict),
    Column("desired_updated_at", UtcDateTime, nullable=True),
    Column("desired_shadow_windows", Integer, nullable=True),
    Column("desired_min_shadow_agreement", Float, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("device_id", String(64), nullable=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("mqtt_hash", String(200), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

INTEREST_EPISODES = text("kind = 'interest' AND episode IS NOT NULL")

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("wall_time", UtcDateTime, nullable=False),
    Column("mono_time", Float, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("bay_id", String(64), nullable=False),
    Column("slot", Integer, nullable=True),
    Column("sku", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("label", String(32), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("units", Integer, nullable=True),
    Column("grams", Float, nullable=True),
    Column("stock_units", Integer, nullable=True),
    Column("dwell_s", Float, nullable=True),
    Column("episode", BigInteger, nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("decided_by", String(16), nullable=False),
    Column("historical", Boolean, nullable=False),
    Column("features", JSON, nullable=False),
    # the candidate's version and label while it ran in shadow (migration 0013)
    Column("shadow_version", Integer, nullable=True),
    Column("shadow_label", String(32), nullable=True),
    UniqueConstraint("device_id", "seq", name="uq_events_device_seq"),
    Index("ix_events_store_id_id", "store_id", "id"),
    Index("ix_events_sku_id", "sku", "id"),
    Index("ix_events_kind_store_sku_time", "kind", "store_id", "sku", "wall_time"),
    # an episode's interest events stored before a batch, for cloud.interest_rollup (0015)
    Index(
        "ix_events_interest_episode",
        "device_id",
        "episode",
        sqlite_where=INTEREST_EPISODES,
        postgresql_where=INTEREST_EPISODES,
    ),
    # the few events decided while a candidate ran in shadow, by its version (0014)
    Index(
        "ix_events_shadow_version",
        "shadow_version",
        sqlite_where=text("shadow_version IS NOT NULL"),
        postgresql_where=text("shadow_version IS NOT NULL"),
    ),
)

windows = Table(
    "windows",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("body", JSON, nullable=False),
)
"""The event window a unit uploaded with event ``(device_id, seq)`` (``models.wire.WireWindow``)."""

device_progress = Table(
    "device_progress",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("highest_contiguous", BigInteger, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

current_stock = Table(
    "current_stock",
    metadata,
    Column("store_id", String(64), primary_key=True),
    Column("bay_id", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("sku", String(64), nullable=True),
    Column("stock_units", Integer, nullable=False),
    Column("confirmed_at", UtcDateTime, nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_current_stock_sku", "sku"),
)

# interest per hour, kept at ingest (cloud.interest_rollup, migration 0015) --------------


def _hours_table(name: str, *columns: Column[Any], indexes: tuple[Index, ...]) -> Table:
    """Interest episodes summed per hour, the figures an interest read answers with."""
    return Table(
        name,
        metadata,
        *columns,
        Column("label", String(32), primary_key=True),
        Column("episodes", BigInteger, nullable=False),
        Column("dwell_sum", Float, nullable=False),
        Column("dwell_n", BigInteger, nullable=False),
        Column("dwell_max", Float, nullable=True),
        Column("at_slot", BigInteger, nullable=False),
        *indexes,
    )


interest_sku_hours = _hours_table(
    "interest_sku_hours",
    Column("store_id", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("bay_id", String(64), primary_key=True),
    indexes=(
        Index("ix_interest_sku_hours_store_hour", "store_id", "hour"),
        Index("ix_interest_sku_hours_hour", "hour"),
    ),
)
interest_bay_hours = _hours_table(
    "interest_bay_hours",
    Column("store_id", String(64), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("bay_id", String(64), primary_key=True),
    indexes=(Index("ix_interest_bay_hours_hour", "hour"),),
)

interest_versions = Table(
    "interest_versions",
    metadata,
    Column("store_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
"""Grows whenever ingest changes a store's interest: what cached interest answers are keyed by."""

sales = Table(
    "sales",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("store_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("sold_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("matched_units", Integer, nullable=False, default=0),
    Index("ix_sales_store_sku_time", "store_id", "sku", "sold_at"),
)

labels = Table(
    "labels",
    metadata,
    Column("event_id", Id, ForeignKey("events.id"), primary_key=True),
    Column("label", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    Column("sale_id", Id, ForeignKey("sales.id"), nullable=True),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

change_counters = Table(
    "change_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


claim_codes = Table(
    "claim_codes",
    metadata,
    Column("code_id", String(16), primary_key=True),
    Column("code_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("bay_id", String(64), nullable=False),
    Column("note", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("claimed_at", UtcDateTime, nullable=True),
    Column("public_key", String(64), nullable=True),
    Column("device_id", String(64), nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
)

claim_failures = Table(
    "claim_failures",
    metadata,
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False, default=0),
    Column("last_at", UtcDateTime, nullable=False),
)

device_health = Table(
    "device_health",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("reported_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("body", JSON, nullable=False),
)
"""The latest health report of each unit (``models.wire.HealthReport``)."""

device_calibration = Table(
    "device_calibration",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("reported_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("body", JSON, nullable=False),
)
"""The latest calibration each unit reported (``models.wire_fleet.CalibrationReport``)."""

device_setup = Table(
    "device_setup",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("url", String(200), nullable=False),
    Column("pin", String(6), nullable=False),
    Column("until", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)
"""A unit's open setup page and its one-time PIN (``models.wire_fleet.SetupAnnouncement``)."""

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp", Float, nullable=False),  # the database's clock, seconds since the epoch
)


# over-the-air model rollouts (registry, groups, unit reports, rollouts) -----------------

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("target_name", String(128), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("training", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
)

device_groups = Table(
    "device_groups",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.device_id"), primary_key=True),
    Column("group_name", String(64), primary_key=True),
    Index("ix_device_groups_group", "group_name"),
)

device_reported = Table(
    "device_reported",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.device_id"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("progress", Float, nullable=True),
    Column("shadow_agreement", Float, nullable=True),
    Column("shadow_heads", JSON, nullable=True),
    Column("shadow_windows", Integer, nullable=True),
    Column("latency_ratio", Float, nullable=True),
    Column("reason", String(500), nullable=False, default=""),
    Column("since", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("rollout_id", Integer, primary_key=True, autoincrement=True),
    Column("model_version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("phases", String(200), nullable=False),
    Column("group_name", String(64), nullable=True),
    Column("min_soak_s", Float, nullable=False),
    Column("abort_failed", Float, nullable=False),
    Column("min_shadow_agreement", Float, nullable=True),
    Column("shadow_windows", Integer, nullable=True),
    Column("max_labelled_drop", Float, nullable=True),  # migration 0013
    Column("min_labelled_windows", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("phase", Integer, nullable=False),
    Column("phase_started_at", UtcDateTime, nullable=False),
    Column("reason", String(500), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

rollout_units = Table(
    "rollout_units",
    metadata,
    Column("rollout_id", Integer, ForeignKey("rollouts.rollout_id"), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("previous_version", Integer, nullable=True),
    Column("touched_at", UtcDateTime, nullable=True),
    Column("last_state", String(16), nullable=True),  # its last report on the version
    Column("last_reason", String(500), nullable=True),
)

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.device_id"), primary_key=True),
    Column("online", Boolean, nullable=True),  # None: never said on MQTT (an HTTP-only unit)
    Column("changed_at", UtcDateTime, nullable=True),  # when ``online`` last changed
    Column("seen_at", UtcDateTime, nullable=True),  # the last status, health or report
    # the figures of the latest health report, kept here so the fleet is one cheap read
    Column("health_at", UtcDateTime, nullable=True),
    Column("agent_version", String(32), nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("decided_by", String(8), nullable=True),
    Column("buffer_depth", BigInteger, nullable=True),
    Column("oldest_unsynced_age_s", Float, nullable=True),
    Column("last_sync_at", UtcDateTime, nullable=True),
    Column("components", JSON, nullable=True),
    Column("health_interval_s", Float, nullable=True),  # the unit's stated health interval
)
"""Each unit's online state from its retained ``…/status`` and when it was last heard."""

device_alarms = Table(
    "device_alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), ForeignKey("devices.device_id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("cleared_at", UtcDateTime, nullable=True),  # None: raised now
    Index("ix_device_alarms_device", "device_id", "cleared_at"),
    Index("ix_device_alarms_raised", "raised_at"),
)
"""Every alarm a unit raised, with when it cleared (the history an operator reads)."""

health_samples = Table(
    "health_samples",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.device_id"), primary_key=True),
    Column("at", UtcDateTime, primary_key=True),
    Column("buffer_depth", BigInteger, nullable=True),
    Column("oldest_unsynced_age_s", Float, nullable=True),
    Column("alarms", Integer, nullable=False),
    Column("down", Integer, nullable=False),
)
"""A unit's health over time: a sample a minute, and one when its alarms or parts change; a day kept."""
