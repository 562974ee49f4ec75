"""What the backend reads: stock now, interest per SKU per hour, the event feed.

Stock comes from ``current_stock``, kept at ingest, so it costs one indexed
read however many events are stored. Interest likewise comes from the hourly
tables ingest keeps (:mod:`cloud.interest_rollup`), each episode counted once
however many slots it concerned: a read costs the hours it asks for. The feed pages
by event id (ids become visible in order, see :mod:`cloud.ingest`) behind a
signed cursor (:mod:`cloud.cursor`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ConfigDict, TypeAdapter
from pydantic_core import to_json
from sqlalchemy import Connection, Table, Text, func, select, type_coerce
from typing_extensions import TypedDict

from cloud.cursor import CursorCodec
from cloud.errors import BadRequestError
from cloud.interest_rollup import hour_of
from cloud.schemas import (
    EventPublic,
    InterestBayHourPublic,
    InterestHourPublic,
    StockSkuPublic,
    StockSlotPublic,
)
from cloud.store.tables import (
    current_stock,
    events,
    interest_bay_hours,
    interest_sku_hours,
    slots,
    utc_naive,
)

MAX_INTEREST_SPAN = timedelta(days=31)
# A feed page's rows are checked as plain dicts with EventPublic's fields and types, in
# one call per page, and written straight to JSON: a quarter of building the models.
EventRow = TypedDict(  # type: ignore[misc]
    "EventRow", {name: f.annotation for name, f in EventPublic.model_fields.items()}
)
EventRow.__pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[attr-defined]
_EVENT_ROWS = TypeAdapter(list[EventRow])
_SLOTS = TypeAdapter(list[StockSlotPublic])
FEED_NAMES = tuple(EventPublic.model_fields)
_FEED_TIMES = tuple(i for i, n in enumerate(FEED_NAMES) if n in ("wall_time", "received_at"))
# the stored values as the driver gives them: the times are made UTC here, not row by row
FEED_COLUMNS = [
    type_coerce(events.c[name], Text) if i in _FEED_TIMES else events.c[name]
    for i, name in enumerate(FEED_NAMES)
]


def _feed_row(row: Any, sqlite: bool) -> dict[str, Any]:
    """A fetched feed row as EventPublic's fields, its times as UTC (text on SQLite,
    ``YYYY-MM-DD HH:MM:SS.ffffff`` as stored, read by the validator)."""
    out = dict(zip(FEED_NAMES, row, strict=True))
    for i in _FEED_TIMES:
        name, value = FEED_NAMES[i], row[i]
        if sqlite and isinstance(value, str):
            out[name] = f"{value[:10]}T{value[11:]}Z"
        elif isinstance(value, datetime) and value.tzinfo is None:
            out[name] = value.replace(tzinfo=UTC)
    return out


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


def _hours(
    table: Table,
    key: Any,
    hours: tuple[datetime, datetime],
    *,
    store: str | None,
    bay: str | None,
    sku: str | None = None,
) -> Any:
    """The rows of an hours table in ``hours`` summed per store, ``key`` (SKU or bay),
    hour and label, narrowed to ``store``, ``bay`` and (per-SKU table) ``sku``."""
    t = table.c
    where = [t.hour >= hours[0], t.hour < hours[1]]
    for column, value in (("store_id", store), ("bay_id", bay), ("sku", sku)):
        if value is not None:
            where.append(t[column] == value)
    return (
        select(
            t.store_id,
            key.label("key"),
            t.hour,
            t.label,
            func.sum(t.episodes).label("n"),
            func.sum(t.dwell_sum).label("dwell_sum"),
            func.sum(t.dwell_n).label("dwell_n"),
            func.max(t.dwell_max).label("dwell_max"),
            func.sum(t.at_slot).label("at_slot"),
        )
        .where(*where)
        .group_by(t.store_id, key, t.hour, t.label)
    )


def _hourly(conn: Connection, stmt: Any) -> list[tuple[tuple[str, str, datetime], dict[str, Any]]]:
    """Rows of :func:`_hours` folded per store, key and hour (the labels into ``counts``)."""
    acc: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for store_id, key, hour, label, n, dwell_sum, dwell_n, dwell_max, at_slot in conn.execute(stmt):
        k = (store_id, key, _as_utc(hour))
        a = acc.get(k)
        if a is None:
            a = acc[k] = {
                "counts": {},
                "dwell_sum": 0.0,
                "dwell_n": 0,
                "dwell_max": None,
                "at_slot": 0,
            }
        a["counts"][label] = int(n)
        a["dwell_sum"] += float(dwell_sum or 0.0)
        a["dwell_n"] += int(dwell_n)
        a["at_slot"] += int(at_slot or 0)
        if dwell_max is not None and (a["dwell_max"] is None or dwell_max > a["dwell_max"]):
            a["dwell_max"] = float(dwell_max)
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


def interest_hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The hours an interest read over ``[since, until)`` answers: ``[first, end)`` in
    whole hours (naive UTC); the answer depends on nothing else of the two times."""
    if until <= since:
        raise BadRequestError("'until' must be after 'since'", field="until", code="bad_range")
    if until - since > MAX_INTEREST_SPAN:
        raise BadRequestError(
            f"at most {MAX_INTEREST_SPAN.days} days per request", field="since", code="bad_range"
        )
    end = hour_of(until)
    return hour_of(since), end if end == utc_naive(until) else end + timedelta(hours=1)


def interest(
    conn: Connection,
    *,
    store: str | None,
    sku: str | None,
    since: datetime,
    until: datetime,
    bay: str | None = None,
) -> tuple[list[InterestHourPublic], list[InterestBayHourPublic]]:
    """Interest episodes per store, SKU and hour, and per bay and hour, for the hours
    that overlap ``[since, until)`` (whole hours: the first from its start, the
    current one as far as it has come).

    Per SKU: the episodes that reached or handled one of its slots. Per bay: every
    episode at the bay, with or without a reach. ``sku`` narrows the SKU rows only.
    """
    hours = interest_hours(since, until)
    return (
        interest_skus(conn, hours, store=store, sku=sku, bay=bay),
        interest_bays(conn, hours, store=store, bay=bay),
    )


def interest_skus(
    conn: Connection,
    hours: tuple[datetime, datetime],
    *,
    store: str | None,
    sku: str | None,
    bay: str | None = None,
) -> list[InterestHourPublic]:
    """The per-SKU half of :func:`interest`, over ``hours`` from :func:`interest_hours`."""
    t = interest_sku_hours
    stmt = _hours(t, t.c.sku, hours, store=store, bay=bay, sku=sku)
    # built from the database's own figures, typed as the models want: no validation pass
    return [
        InterestHourPublic.model_construct(store_id=st, sku=key, hour=h, **_figures(a))
        for (st, key, h), a in _hourly(conn, stmt)
    ]


def interest_bays(
    conn: Connection,
    hours: tuple[datetime, datetime],
    *,
    store: str | None,
    bay: str | None = None,
) -> list[InterestBayHourPublic]:
    """The per-bay half of :func:`interest`, over ``hours`` from :func:`interest_hours`."""
    t = interest_bay_hours
    return [
        InterestBayHourPublic.model_construct(
            store_id=st, bay_id=key, hour=h, reached=a["at_slot"], **_figures(a)
        )
        for (st, key, h), a in _hourly(conn, _hours(t, t.c.bay_id, hours, store=store, bay=bay))
    ]


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
) -> bytes:
    """One page of events in arrival order after ``cursor``, under the filters, as
    :class:`~cloud.schemas.FeedPage`'s JSON."""
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
    sqlite = conn.dialect.name == "sqlite"
    raw = [_feed_row(r, sqlite) for r in conn.execute(stmt).all()]
    rows = _EVENT_ROWS.validate_python(raw)
    last = raw[-1]["id"] if raw else after
    cursor_json = to_json(codec.encode(last, filters))
    return b'{"data":%b,"count":%d,"next_cursor":%b}' % (
        _EVENT_ROWS.dump_json(rows),
        len(rows),
        cursor_json,
    )
