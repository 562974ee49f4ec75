"""What the backend reads: stock now, interest per SKU per hour, the event feed.

Stock comes from ``current_stock``, kept at ingest, so it costs one indexed
read however many events are stored. Interest is grouped in SQL per store, SKU,
hour and class over the ``(kind, store, sku, wall_time)`` index. The feed pages
by event id (ids become visible in order, see :mod:`cloud.ingest`) behind a
signed cursor (:mod:`cloud.cursor`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, func, select

from cloud.cursor import CursorCodec
from cloud.errors import BadRequestError
from cloud.schemas import (
    EventPublic,
    FeedPage,
    InterestHourPublic,
    StockSkuPublic,
    StockSlotPublic,
)
from cloud.store.tables import current_stock, events, utc_naive

MAX_INTEREST_SPAN = timedelta(days=31)
_EVENTS = TypeAdapter(list[EventPublic])  # one validation call per page, not per row
_SLOTS = TypeAdapter(list[StockSlotPublic])
FEED_COLUMNS = [events.c[name] for name in EventPublic.model_fields]


def stock_slots(
    conn: Connection, *, store: str | None, bay: str | None, sku: str | None
) -> list[StockSlotPublic]:
    """Units on each slot, with when that figure was last confirmed."""
    stmt = select(current_stock)
    if store is not None:
        stmt = stmt.where(current_stock.c.store_id == store)
    if bay is not None:
        stmt = stmt.where(current_stock.c.bay_id == bay)
    if sku is not None:
        stmt = stmt.where(current_stock.c.sku == sku)
    stmt = stmt.order_by(current_stock.c.store_id, current_stock.c.bay_id, current_stock.c.slot)
    return _SLOTS.validate_python([r._asdict() for r in conn.execute(stmt)])


def stock_skus(conn: Connection, *, store: str | None, sku: str | None) -> list[StockSkuPublic]:
    """Units per store and SKU, summed over slots, with the stalest and freshest confirmation."""
    c = current_stock.c
    stmt = select(
        c.store_id,
        c.sku,
        func.sum(c.stock_units).label("stock_units"),
        func.count().label("slots"),
        func.min(c.confirmed_at).label("oldest_confirmed_at"),
        func.max(c.confirmed_at).label("newest_confirmed_at"),
    ).where(c.sku.is_not(None))
    if store is not None:
        stmt = stmt.where(c.store_id == store)
    if sku is not None:
        stmt = stmt.where(c.sku == sku)
    stmt = stmt.group_by(c.store_id, c.sku).order_by(c.store_id, c.sku)
    out = []
    for r in conn.execute(stmt):
        m = dict(r._mapping)
        for k in ("oldest_confirmed_at", "newest_confirmed_at"):
            m[k] = _as_utc(m[k])
        out.append(StockSkuPublic.model_validate(m))
    return out


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hour_expr(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", events.c.wall_time)
    return func.strftime("%Y-%m-%d %H:00:00", events.c.wall_time)


def interest(
    conn: Connection,
    *,
    store: str | None,
    sku: str | None,
    since: datetime,
    until: datetime,
) -> list[InterestHourPublic]:
    """Interest episodes per store, SKU and hour in ``[since, until)``: counts, dwell, conversion."""
    if until <= since:
        raise BadRequestError("'until' must be after 'since'", field="until", code="bad_range")
    if until - since > MAX_INTEREST_SPAN:
        raise BadRequestError(
            f"at most {MAX_INTEREST_SPAN.days} days per request", field="since", code="bad_range"
        )
    e = events.c
    hour = _hour_expr(conn).label("hour")
    stmt = select(
        e.store_id,
        e.sku,
        hour,
        e.label,
        func.count().label("n"),
        func.sum(e.dwell_s).label("dwell_sum"),
        func.count(e.dwell_s).label("dwell_n"),
        func.max(e.dwell_s).label("dwell_max"),
    ).where(
        e.kind == "interest",
        e.sku.is_not(None),
        e.wall_time >= utc_naive(since),
        e.wall_time < utc_naive(until),
    )
    if store is not None:
        stmt = stmt.where(e.store_id == store)
    if sku is not None:
        stmt = stmt.where(e.sku == sku)
    stmt = stmt.group_by(e.store_id, e.sku, hour, e.label)
    acc: dict[tuple[str, str, datetime], dict[str, Any]] = defaultdict(
        lambda: {"counts": {}, "dwell_sum": 0.0, "dwell_n": 0, "dwell_max": None}
    )
    for r in conn.execute(stmt):
        a = acc[(r.store_id, r.sku, _as_utc(r.hour))]
        a["counts"][r.label] = int(r.n)
        a["dwell_sum"] += float(r.dwell_sum or 0.0)
        a["dwell_n"] += int(r.dwell_n)
        if r.dwell_max is not None:
            a["dwell_max"] = max(a["dwell_max"] or 0.0, float(r.dwell_max))
    out = []
    for (store_id, sku_id, h), a in sorted(acc.items()):
        counts: dict[str, int] = a["counts"]
        touch, take = counts.get("touch", 0), counts.get("take", 0)
        out.append(
            InterestHourPublic(
                store_id=store_id,
                sku=sku_id,
                hour=h,
                episodes=sum(counts.values()),
                counts=counts,
                dwell_mean_s=a["dwell_sum"] / a["dwell_n"] if a["dwell_n"] else None,
                dwell_max_s=a["dwell_max"],
                touch_to_take=take / (touch + take) if touch + take else None,
            )
        )
    return out


def feed(
    conn: Connection,
    codec: CursorCodec,
    *,
    store: str | None,
    sku: str | None,
    kind: str | None,
    since: datetime | None,
    cursor: str | None,
    limit: int,
) -> FeedPage:
    """One page of events in arrival order after ``cursor``, under the filters."""
    filters = {
        "store": store,
        "sku": sku,
        "type": kind,
        "since": utc_naive(since).isoformat() if since is not None else None,
    }
    after = codec.decode(cursor, filters) if cursor else 0
    e = events.c
    stmt = select(*FEED_COLUMNS).where(e.id > after)
    if store is not None:
        stmt = stmt.where(e.store_id == store)
    if sku is not None:
        stmt = stmt.where(e.sku == sku)
    if kind is not None:
        stmt = stmt.where(e.kind == kind)
    if since is not None:
        stmt = stmt.where(e.wall_time >= utc_naive(since))
    stmt = stmt.order_by(e.id).limit(limit)
    data = _EVENTS.validate_python([r._asdict() for r in conn.execute(stmt)])
    last = data[-1].id if data else after
    return FeedPage.model_construct(
        data=data, count=len(data), next_cursor=codec.encode(last, filters)
    )
