"""What the backend reads: stock now, interest per SKU per hour, the event feed.

Stock comes from ``current_stock``, kept at ingest, so it costs one indexed
read however many events are stored. Interest is grouped in SQL per store, SKU
(or bay), hour and class over the ``(kind, store, sku, wall_time)`` index, each
episode counted once however many slots it concerned. The feed pages
by event id (ids become visible in order, see :mod:`cloud.ingest`) behind a
signed cursor (:mod:`cloud.cursor`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, case, func, select

from cloud.cursor import CursorCodec
from cloud.errors import BadRequestError
from cloud.schemas import (
    EventPublic,
    FeedPage,
    InterestBayHourPublic,
    InterestHourPublic,
    StockSkuPublic,
    StockSlotPublic,
)
from cloud.store.tables import current_stock, events, slots, utc_naive

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
    """Units per store and SKU, summed over reported slots; registered SKUs never reported
    are listed with ``stock_units`` null."""
    c = current_stock.c
    stmt = select(
        c.store_id,
        c.sku,
        func.sum(c.stock_units).label("stock_units"),
        func.count().label("reported_slots"),
        func.min(c.confirmed_at).label("oldest_confirmed_at"),
        func.max(c.confirmed_at).label("newest_confirmed_at"),
    ).where(c.sku.is_not(None))
    r = slots.c
    reg = select(r.store_id, r.sku, func.count().label("slots"))
    if store is not None:
        stmt, reg = stmt.where(c.store_id == store), reg.where(r.store_id == store)
    if sku is not None:
        stmt, reg = stmt.where(c.sku == sku), reg.where(r.sku == sku)
    got: dict[tuple[str, str], dict[str, Any]] = {}
    for row in conn.execute(reg.group_by(r.store_id, r.sku)):
        got[(row.store_id, row.sku)] = {
            "store_id": row.store_id,
            "sku": row.sku,
            "stock_units": None,
            "slots": int(row.slots),
            "reported_slots": 0,
            "oldest_confirmed_at": None,
            "newest_confirmed_at": None,
        }
    for row in conn.execute(stmt.group_by(c.store_id, c.sku)):
        m = dict(row._mapping)
        for k in ("oldest_confirmed_at", "newest_confirmed_at"):
            m[k] = _as_utc(m[k])
        have = got.get((m["store_id"], m["sku"]))
        m["slots"] = max(m["reported_slots"], have["slots"] if have else 0)
        got[(m["store_id"], m["sku"])] = m
    return [StockSkuPublic.model_validate(got[k]) for k in sorted(got)]


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hour_expr(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", events.c.wall_time)
    return func.strftime("%Y-%m-%d %H:00:00", events.c.wall_time)


def _episodes(conn: Connection, key: Any, where: list[Any]) -> Any:
    """Interest episodes per ``key`` (SKU or bay) and hour: one row per episode and label.

    A unit sends one interest event per slot an episode concerned; an episode that
    concerned two slots of one SKU, or several slots of one bay, counts once.
    """
    e = events.c
    hour = _hour_expr(conn).label("hour")
    episode = func.coalesce(e.episode, -e.seq).label("ep")  # no episode: the event alone
    per_episode = (
        select(
            e.store_id,
            key.label("key"),
            hour,
            e.label,
            func.max(e.dwell_s).label("dwell"),
            func.max(case((e.slot.is_not(None), 1), else_=0)).label("at_slot"),
        )
        .where(e.kind == "interest", *where)
        .group_by(e.store_id, key, hour, e.label, e.device_id, episode)
        .subquery()
    )
    p = per_episode.c
    return select(
        p.store_id,
        p.key,
        p.hour,
        p.label,
        func.count().label("n"),
        func.sum(p.dwell).label("dwell_sum"),
        func.count(p.dwell).label("dwell_n"),
        func.max(p.dwell).label("dwell_max"),
        func.sum(p.at_slot).label("at_slot"),
    ).group_by(p.store_id, p.key, p.hour, p.label)


def _hourly(conn: Connection, stmt: Any) -> list[tuple[tuple[str, str, datetime], dict[str, Any]]]:
    acc: dict[tuple[str, str, datetime], dict[str, Any]] = defaultdict(
        lambda: {"counts": {}, "dwell_sum": 0.0, "dwell_n": 0, "dwell_max": None, "at_slot": 0}
    )
    for r in conn.execute(stmt):
        a = acc[(r.store_id, r.key, _as_utc(r.hour))]
        a["counts"][r.label] = int(r.n)
        a["dwell_sum"] += float(r.dwell_sum or 0.0)
        a["dwell_n"] += int(r.dwell_n)
        a["at_slot"] += int(r.at_slot or 0)
        if r.dwell_max is not None:
            a["dwell_max"] = max(a["dwell_max"] or 0.0, float(r.dwell_max))
    return sorted(acc.items())


def _figures(a: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = a["counts"]
    touch, take = counts.get("touch", 0), counts.get("take", 0)
    return {
        "episodes": sum(counts.values()),
        "counts": counts,
        "dwell_mean_s": a["dwell_sum"] / a["dwell_n"] if a["dwell_n"] else None,
        "dwell_max_s": a["dwell_max"],
        "touch_to_take": take / (touch + take) if touch + take else None,
    }


def interest(
    conn: Connection,
    *,
    store: str | None,
    sku: str | None,
    since: datetime,
    until: datetime,
    bay: str | None = None,
) -> tuple[list[InterestHourPublic], list[InterestBayHourPublic]]:
    """Interest episodes in ``[since, until)`` per store, SKU and hour, and per bay and hour.

    Per SKU: the episodes that reached or handled one of its slots. Per bay: every
    episode at the bay, with or without a reach. ``sku`` narrows the SKU rows only.
    """
    if until <= since:
        raise BadRequestError("'until' must be after 'since'", field="until", code="bad_range")
    if until - since > MAX_INTEREST_SPAN:
        raise BadRequestError(
            f"at most {MAX_INTEREST_SPAN.days} days per request", field="since", code="bad_range"
        )
    e = events.c
    where = [e.wall_time >= utc_naive(since), e.wall_time < utc_naive(until)]
    if store is not None:
        where.append(e.store_id == store)
    if bay is not None:
        where.append(e.bay_id == bay)
    per_sku = [*where, e.sku.is_not(None)] + ([e.sku == sku] if sku is not None else [])
    skus = [
        InterestHourPublic(store_id=st, sku=key, hour=h, **_figures(a))
        for (st, key, h), a in _hourly(conn, _episodes(conn, e.sku, per_sku))
    ]
    bays = [
        InterestBayHourPublic(store_id=st, bay_id=key, hour=h, reached=a["at_slot"], **_figures(a))
        for (st, key, h), a in _hourly(conn, _episodes(conn, e.bay_id, where))
    ]
    return skus, bays


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
