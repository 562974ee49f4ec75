"""What the console pages show, read through the same functions as the API.

Stock and interest come from :mod:`cloud.reads`, units and their state (online,
versions, outbox, health, alarms and their history) from :mod:`cloud.fleet_state`;
the stock line of the day is one read of the day's stock events over the
``(kind, store, sku, wall_time)`` index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from cloud import device_setup, fleet, fleet_views, reads
from cloud.console.charts import Heatmap, LineChart, interest_heatmap, stock_lines
from cloud.device_setup import DeviceSetupPublic
from cloud.fleet_views import AlarmPublic, DeviceStatePublic
from cloud.schemas import EventPublic, StockSkuPublic
from cloud.store.tables import events, utc_naive

LOW_STOCK = 3  # at or under this many units a SKU is flagged low
MAX_LINE_POINTS = 20_000
RECENT_EVENTS = 50
FLEET_PAGE = 100  # units a fleet page lists
RECENT_ALARMS = 20
HEALTH_SPAN = timedelta(hours=24)


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class StockRow:
    """A SKU's stock now with its flag (``out``, ``low`` or empty)."""

    sku: str
    units: int
    slots: int
    confirmed_at: datetime
    flag: str


@dataclass
class StorePage:
    """Everything the store page shows."""

    store_id: str
    day: datetime
    stock: list[StockRow]
    heatmap: Heatmap
    chart: LineChart
    conversion: list[tuple[str, int, int, float | None]]
    drawn: int = 0  # SKUs drawn in the heatmap and stock lines (those with most interest)
    skus_seen: int = 0  # SKUs with interest today


def _flag(units: int, low: int) -> str:
    return "out" if units <= 0 else "low" if units <= low else ""


def stock_rows(items: list[StockSkuPublic], *, low: int = LOW_STOCK) -> list[StockRow]:
    """Stock per SKU with flags, emptiest first (SKUs no unit reported yet are left out)."""
    rows = [
        StockRow(s.sku, s.stock_units, s.slots, s.newest_confirmed_at, _flag(s.stock_units, low))
        for s in items
        if s.stock_units is not None and s.newest_confirmed_at is not None
    ]
    return sorted(rows, key=lambda r: (r.units, r.sku))


def stock_readings(
    conn: Connection, store_id: str, since: datetime, until: datetime
) -> dict[str, list[tuple[datetime, int]]]:
    """Stock per SKU after each stock event in ``[since, until)``, summed over its slots."""
    e = events.c
    stmt = (
        select(e.sku, e.bay_id, e.slot, e.wall_time, e.stock_units)
        .where(
            e.kind == "stock",
            e.store_id == store_id,
            e.sku.is_not(None),
            e.stock_units.is_not(None),
            e.wall_time >= utc_naive(since),
            e.wall_time < utc_naive(until),
        )
        .order_by(e.wall_time, e.id)
        .limit(MAX_LINE_POINTS)
    )
    per_slot: dict[str, dict[tuple[str, int | None], int]] = {}  # sku -> (bay, slot) -> units
    out: dict[str, list[tuple[datetime, int]]] = {}
    for r in conn.execute(stmt):
        slots = per_slot.setdefault(r.sku, {})
        slots[(r.bay_id, r.slot)] = int(r.stock_units)
        total = sum(slots.values())
        when = r.wall_time if r.wall_time.tzinfo else r.wall_time.replace(tzinfo=UTC)
        out.setdefault(r.sku, []).append((when, total))
    return out


DRAWN_SKUS = 25  # SKUs the store page draws unless asked for more


def store_page(
    conn: Connection, store_id: str, *, now: datetime, low: int, top: int = DRAWN_SKUS
) -> StorePage:
    """The store page of ``store_id`` for the UTC day of ``now`` (404 for an unknown store).

    The heatmap and the stock lines draw the ``top`` SKUs with most interest episodes
    today (a store of 400 SKUs drew a 570 KB page); the stock and conversion tables
    list every SKU.
    """
    fleet.require_store(conn, store_id)
    start = day_start(now)
    end = start + timedelta(days=1)
    stock = stock_rows(reads.stock_skus(conn, store=store_id, sku=None), low=low)
    hours, _bays = reads.interest(conn, store=store_id, sku=None, since=start, until=end)
    episodes: dict[str, int] = {}
    for h in hours:
        episodes[h.sku] = episodes.get(h.sku, 0) + h.episodes
    drawn = set(sorted(episodes, key=lambda k: (-episodes[k], k))[:top])
    heat = interest_heatmap(
        [(h.sku, h.hour.hour, h.episodes, h.touch_to_take) for h in hours if h.sku in drawn]
    )
    totals: dict[str, list[int]] = {}
    for h in hours:
        t = totals.setdefault(h.sku, [0, 0])
        t[0] += h.counts.get("touch", 0)
        t[1] += h.counts.get("take", 0)
    conversion = [
        (sku, touch, take, take / (touch + take) if touch + take else None)
        for sku, (touch, take) in sorted(totals.items())
    ]
    readings = stock_readings(conn, store_id, start, end)
    if len(readings) > top:  # the SKUs with most interest, then by name
        keep = sorted(readings, key=lambda k: (-episodes.get(k, 0), k))[:top]
        readings = {k: readings[k] for k in keep}
    chart = stock_lines(readings, start=start, end=min(now, end))
    return StorePage(store_id, start, stock, heat, chart, conversion, len(drawn), len(episodes))


@dataclass
class UnitRow:
    """A unit as the fleet page lists it: what it sorts, filters and counts by, and its
    whole state (``device``), built only for the rows a page shows."""

    device_id: str
    store_id: str
    buffer_depth: int | None
    lag_s: float | None  # since it was last heard (events, status, health or a report)
    state: str  # online, offline or unknown (never heard)
    alarms: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)
    model_version: Any = None
    build: Callable[[], DeviceStatePublic] | None = field(default=None, repr=False)

    @cached_property
    def device(self) -> DeviceStatePublic:
        """The unit's state as the API answers it."""
        if self.build is None:
            raise ValueError(f"unit {self.device_id}: no state to build")
        return self.build()


@dataclass
class UnitPage:
    """Everything the unit page shows."""

    row: UnitRow
    events: list[EventPublic]
    alarms: list[AlarmPublic]
    outbox_chart: LineChart  # events waiting on the unit
    trouble_chart: LineChart  # alarms raised and parts down
    since: datetime
    setup: DeviceSetupPublic | None = None  # its setup page, while open


def _lag(seen: datetime | None, now: datetime) -> float | None:
    return None if seen is None else max(0.0, (now - seen).total_seconds())


def _row(d: DeviceStatePublic, now: datetime) -> UnitRow:
    down = sorted(k for k, c in d.components.items() if not c.ok)
    lag = _lag(d.last_seen_at, now)
    return UnitRow(
        d.device_id, d.store_id, d.buffer_depth, lag, d.state, list(d.alarms), down,
        d.model_version, lambda: d,
    )  # fmt: skip


def _listed(r: RowMapping, alarms: list[str], now: datetime) -> UnitRow:
    """A fleet row from the database row, its state built when a page shows it."""
    parts = r["components"] or {}
    down = sorted(k for k, c in parts.items() if not (isinstance(c, dict) and c.get("ok")))
    return UnitRow(
        r["device_id"],
        r["store_id"],
        r["buffer_depth"],
        _lag(fleet_views.last_seen(r), now),
        fleet_views.row_state(r, now),
        list(alarms),
        down,
        r["model_version"],
        lambda: fleet_views.state_of(r, alarms, now),
    )


SORTS = {
    "unit": lambda r: (r.device_id,),
    "store": lambda r: (r.store_id, r.device_id),
    "lag": lambda r: (-(r.lag_s if r.lag_s is not None else float("inf")), r.device_id),
    "alarms": lambda r: (-len(r.alarms) - len(r.down), r.device_id),
    "outbox": lambda r: (-(r.buffer_depth or 0), r.device_id),
}


def fleet_rows(
    conn: Connection, *, store: str | None, state: str | None, sort: str, now: datetime
) -> list[UnitRow]:
    """Every unit (of ``store`` if given, in ``state`` if given), sorted by ``sort``."""
    found = fleet_views.state_rows(conn, store_id=store, calibration=False)
    rows = [_listed(r, alarms, now) for r, alarms in found]
    if state:
        rows = [r for r in rows if r.state == state]
    return sorted(rows, key=SORTS.get(sort, SORTS["store"]))


def fleet_summary(rows: list[UnitRow]) -> dict[str, int]:
    """How many of ``rows`` are online, offline, never heard, and alarming (alarms or parts down)."""
    out = dict.fromkeys(("online", "offline", "unknown", "alarming"), 0)
    for r in rows:
        out[r.state] = out.get(r.state, 0) + 1
        out["alarming"] += bool(r.alarms or r.down)
    return out


def unit_page(conn: Connection, device_id: str, *, now: datetime) -> UnitPage:
    """A unit (404 when unknown): its state, latest events, alarm history, health over the day."""
    device = fleet_views.device_state(conn, device_id, now=now)
    stmt = (
        select(*reads.FEED_COLUMNS)
        .where(events.c.device_id == device_id)
        .order_by(events.c.seq.desc())
        .limit(RECENT_EVENTS)
    )
    recent = [EventPublic.model_validate(r._asdict()) for r in conn.execute(stmt)]
    alarms = fleet_views.list_alarms(conn, device_id=device_id, limit=RECENT_ALARMS)
    since = now - HEALTH_SPAN
    samples = fleet_views.health_history(conn, device_id, since=since)
    depth = [(at, d) for at, d, _, _, _ in samples if d is not None]
    counts = {
        "alarms raised": [(at, n) for at, _, _, n, _ in samples],
        "parts down": [(at, n) for at, _, _, _, n in samples],
    }
    outbox = stock_lines({"outbox depth": depth} if depth else {}, start=since, end=now)
    trouble = stock_lines({k: v for k, v in counts.items() if v}, start=since, end=now, height=150)
    setup = device_setup.open_setup(conn, device_id, now=now)
    return UnitPage(_row(device, now), recent, alarms, outbox, trouble, since, setup)
