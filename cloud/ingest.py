"""Ingest: store checked events from units once, whole batch or nothing.

Workflow: :mod:`cloud.checks` (pure: device ids, time bounds) refuses a batch
with a reason and the field at fault; :func:`store_events` then writes it in one
transaction: the events not stored yet (found under the write lock; ``COPY`` on
PostgreSQL, insert-or-ignore on ``(device_id, seq)`` on SQLite) and the windows
some of them carry, the current stock of every slot a stock or level event
confirmed, the interest episodes per hour (:mod:`cloud.interest_rollup`), and
each device's highest contiguous seq. Only after the commit does a
caller ack anything to a unit.

A slot's current stock is the figure of its device's highest seq stored so far,
whatever order the events arrive in (two MQTT workers on the shared subscription,
a retried HTTP batch): a unit numbers its decisions in the order it made them,
while arrival order and wall time say nothing about that (one decision pass gives
all its events the same wall time; a unit's clock may step). Only when another
device reports on the slot (a unit replaced) does the later wall time win.

Feed ids must become visible in order, so writers are serialised: SQLite by
``BEGIN IMMEDIATE``, PostgreSQL by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, and_, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from cloud import interest_rollup
from cloud.store import Store
from cloud.store.tables import (
    SQLITE_TIME_SEP,
    copy_rows,
    current_stock,
    device_progress,
    driver_time,
    events,
    utc_naive,
)
from models.wire import ShelfEvent, WireWindow

FEED_LOCK_KEY = 0x5E1F5E45  # pg_advisory_xact_lock key serialising ingest writers
STOCK_KINDS = frozenset({"stock", "level"})


@dataclass
class IngestResult:
    """What one transaction stored, per device."""

    stored: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    duplicates: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    highest_contiguous: dict[str, int] = field(default_factory=dict)


def event_row(ev: ShelfEvent, received_at: datetime) -> dict[str, Any]:
    """The ``events`` row of a wire event (column name to value)."""
    row = _row_values(ev, utc_naive(ev.wall_time), received_at, ev.features)
    return dict(zip(EVENT_COLUMNS, row, strict=True))


def _row_values(ev: ShelfEvent, wall: Any, received_at: Any, features: Any) -> tuple[Any, ...]:
    """One event's values in :data:`EVENT_COLUMNS` order (times and features as given)."""
    return (
        ev.device_id,
        ev.seq,
        wall,
        ev.mono_time,
        received_at,
        ev.store,
        ev.bay,
        ev.slot,
        ev.sku,
        ev.kind,
        ev.label,
        ev.confidence,
        ev.units,
        ev.grams,
        ev.stock_units,
        ev.dwell_s,
        ev.episode,
        ev.model_version,
        ev.decided_by,
        ev.historical,
        features,
        ev.shadow.version if ev.shadow else None,
        ev.shadow.label if ev.shadow else None,
    )


EVENT_COLUMNS = (
    "device_id", "seq", "wall_time", "mono_time", "received_at", "store_id", "bay_id", "slot",
    "sku", "kind", "label", "confidence", "units", "grams", "stock_units", "dwell_s", "episode",
    "model_version", "decided_by", "historical", "features", "shadow_version", "shadow_label",
)  # fmt: skip
ZERO = timedelta(0)


def driver_params(
    evs: Sequence[ShelfEvent], dialect: str, received_at: datetime
) -> list[tuple[Any, ...]]:
    """Wire events as DB-API parameter tuples in :data:`EVENT_COLUMNS` order."""
    sqlite_ = dialect == "sqlite"
    received = driver_time(received_at, dialect)
    out = []
    for ev in evs:
        wall = ev.wall_time
        if wall.tzinfo is not None and wall.utcoffset() != ZERO:
            wall = utc_naive(wall)
        if sqlite_:  # the text SQLAlchemy writes; an aware UTC time's "+00:00" cut off
            wall_param: Any = wall.isoformat(SQLITE_TIME_SEP, "microseconds")[:26]
        else:
            wall_param = wall if wall.tzinfo is None else wall.replace(tzinfo=None)
        features = to_json(ev.features).decode() if ev.features else "{}"
        out.append(_row_values(ev, wall_param, received, features))
    return out


def _dialect_insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class _Sql:
    """The statements of the ingest transaction, built once per dialect."""

    def __init__(self, dialect: str) -> None:
        mark = "?" if dialect == "sqlite" else "%s"
        self.insert_events = (
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(EVENT_COLUMNS))}) "
            "ON CONFLICT (device_id, seq) DO NOTHING"
        )
        self.existing = (
            f"SELECT seq FROM events WHERE device_id = {mark} AND seq BETWEEN {mark} AND {mark}"
        )
        self.progress = f"SELECT highest_contiguous FROM device_progress WHERE device_id = {mark}"
        self.after = (
            f"SELECT seq FROM events WHERE device_id = {mark} AND seq > {mark} "
            f"ORDER BY seq LIMIT {WALK_CHUNK}"
        )
        self.insert_windows = (
            f"INSERT INTO windows (device_id, seq, body) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (device_id, seq) DO NOTHING"
        )
        self.bump_stock = "UPDATE change_counters SET value = value + 1 WHERE name = 'stock'"
        ins = _dialect_insert(dialect)(current_stock)
        ex, cur = ins.excluded, current_stock.c
        self.upsert_stock = ins.on_conflict_do_update(
            index_elements=["store_id", "bay_id", "slot"],
            set_={
                "sku": func.coalesce(ex.sku, current_stock.c.sku),
                "stock_units": ex.stock_units,
                "confirmed_at": ex.confirmed_at,
                "device_id": ex.device_id,
                "seq": ex.seq,
            },
            where=or_(
                and_(ex.device_id == cur.device_id, ex.seq > cur.seq),
                and_(ex.device_id != cur.device_id, ex.confirmed_at >= cur.confirmed_at),
            ),
        )
        pins = _dialect_insert(dialect)(device_progress)
        self.upsert_progress = pins.on_conflict_do_update(
            index_elements=["device_id"],
            set_={
                "highest_contiguous": pins.excluded.highest_contiguous,
                "last_seen_at": pins.excluded.last_seen_at,
            },
        )


WALK_CHUNK = 1000


@functools.cache
def _sql(dialect: str) -> _Sql:
    return _Sql(dialect)


def _existing_seqs(conn: Connection, device_id: str, seqs: list[int]) -> set[int]:
    got = conn.exec_driver_sql(_sql(conn.dialect.name).existing, (device_id, seqs[0], seqs[-1]))
    wanted = set(seqs)
    return {int(s) for (s,) in got if s in wanted}


def newer_figure(
    device_id: str, seq: int, wall: datetime, cur_device: str, cur_seq: int, cur_wall: datetime
) -> bool:
    """Whether a slot's figure ``(device_id, seq, wall)`` replaces the one it has.

    The same device: the higher seq wins, never the later arrival or wall time.
    Another device (a unit replaced on the bay): the later wall time wins.
    """
    if device_id == cur_device:
        return seq > cur_seq
    return wall >= cur_wall


def _update_stock(conn: Connection, evs: Iterable[ShelfEvent]) -> None:
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for ev in evs:
        if ev.kind not in STOCK_KINDS or ev.stock_units is None or ev.slot is None:
            continue
        k = (ev.store, ev.bay, ev.slot)
        wall = utc_naive(ev.wall_time)
        cur = latest.get(k)
        if cur is None or newer_figure(
            ev.device_id, ev.seq, wall, cur["device_id"], cur["seq"], cur["confirmed_at"]
        ):
            latest[k] = {
                "store_id": ev.store,
                "bay_id": ev.bay,
                "slot": ev.slot,
                "sku": ev.sku,
                "stock_units": ev.stock_units,
                "confirmed_at": wall,
                "device_id": ev.device_id,
                "seq": ev.seq,
            }
    if latest:
        sql = _sql(conn.dialect.name)
        conn.execute(sql.upsert_stock, list(latest.values()))
        conn.exec_driver_sql(sql.bump_stock)


def window_params(evs: Sequence[ShelfEvent]) -> list[tuple[str, int, str] | None]:
    """``(device_id, seq, body)`` of the window each event carries (``None``: it carries none)."""
    dump = WireWindow.__pydantic_serializer__.to_json
    return [
        None if ev.window is None else (ev.device_id, ev.seq, dump(ev.window).decode())
        for ev in evs
    ]


def _advance(conn: Connection, device_id: str, known: set[int], now: datetime) -> int:
    """Raise and return the device's highest contiguous stored seq.

    ``known`` are seqs certainly stored now (the batch's); past them the walk
    goes on over seqs stored earlier out of order.
    """
    sql = _sql(conn.dialect.name)
    hc = conn.exec_driver_sql(sql.progress, (device_id,)).scalar()
    top = 0 if hc is None else int(hc)
    if top + 1 in known:
        while top + 1 in known:
            top += 1
        while True:
            advanced = 0
            for (s,) in conn.exec_driver_sql(sql.after, (device_id, top)).all():
                if s != top + 1:
                    break
                top, advanced = int(s), advanced + 1
            if advanced < WALK_CHUNK:
                break
    conn.execute(
        sql.upsert_progress,
        {"device_id": device_id, "highest_contiguous": top, "last_seen_at": now},
    )
    return top


def _insert_rows(
    conn: Connection, rows: list[tuple[Any, ...]], windows: list[tuple[str, int, str]]
) -> None:
    """Insert event and window rows none of which is stored yet (checked under the lock).

    PostgreSQL takes them with ``COPY``, several times faster than row-by-row
    inserts; SQLite's ``executemany`` of one prepared statement is already its fastest path.
    """
    sql = _sql(conn.dialect.name)
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(sql.insert_events, rows)
        if windows:
            conn.exec_driver_sql(sql.insert_windows, windows)
        return
    copy_rows(conn, COPY_EVENTS, rows)
    if windows:
        copy_rows(conn, COPY_WINDOWS, windows)


COPY_EVENTS = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
COPY_WINDOWS = "COPY windows (device_id, seq, body) FROM STDIN"


def store_events(
    store: Store, evs: Sequence[ShelfEvent], *, now: datetime | None = None
) -> IngestResult:
    """Store checked events in one transaction; duplicates of stored seqs are skipped.

    Returns, per device, the seqs newly stored, those already there and the
    highest contiguous seq after the commit.
    """
    received = utc_naive(now or datetime.now(UTC))
    result = IngestResult()
    by_device: dict[str, dict[int, ShelfEvent]] = defaultdict(dict)
    for ev in evs:
        by_device[ev.device_id].setdefault(ev.seq, ev)
    # rows are laid out before the write lock is taken: other writers go on meanwhile
    dialect = store.dialect
    unique = [seqmap[s] for seqmap in by_device.values() for s in sorted(seqmap)]
    rows = driver_params(unique, dialect, received)
    bodies = window_params(unique)
    with store.writing() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_KEY})
        before: set[tuple[str, int]] = set()  # stored by an earlier request
        for device_id, seqmap in by_device.items():
            seqs = sorted(seqmap)
            existing = _existing_seqs(conn, device_id, seqs)
            before.update((device_id, s) for s in existing)
            result.duplicates[device_id] += [s for s in seqs if s in existing]
            result.stored[device_id] += [s for s in seqs if s not in existing]
        keep = [i for i, ev in enumerate(unique) if (ev.device_id, ev.seq) not in before]
        if keep:
            if len(keep) < len(unique):  # some were stored before: only the others go in
                unique, rows = [unique[i] for i in keep], [rows[i] for i in keep]
                bodies = [bodies[i] for i in keep]
            carried = [b for b in bodies if b is not None]
            interest_rollup.apply(conn, unique)  # before the insert: it reads earlier events
            _insert_rows(conn, rows, carried)
            _update_stock(conn, unique)
        for device_id, seqmap in by_device.items():
            result.highest_contiguous[device_id] = _advance(conn, device_id, set(seqmap), received)
    return result


def stock_version(conn: Connection) -> int:
    """The ``stock`` change counter: grows with every ingest that touched current stock."""
    got = conn.exec_driver_sql("SELECT value FROM change_counters WHERE name = 'stock'").scalar()
    return int(got or 0)


def highest_contiguous(store: Store, device_id: str) -> int:
    """The device's highest contiguous stored seq (0 when nothing is stored)."""
    with store.engine.connect() as conn:
        hc = conn.execute(
            select(device_progress.c.highest_contiguous).where(
                device_progress.c.device_id == device_id
            )
        ).scalar_one_or_none()
    return 0 if hc is None else int(hc)


def rebuild_current_stock(store: Store) -> int:
    """Recompute ``current_stock`` from every stored stock and level event; returns slots.

    Ingest keeps the table current; this is for a store filled by other means
    (a restore, a bulk load) and for checking the incremental path.
    """
    e = events.c
    per_device = (  # each device's figure of highest seq per slot
        select(
            e.store_id,
            e.bay_id,
            e.slot,
            e.sku,
            e.stock_units,
            e.wall_time.label("confirmed_at"),
            e.device_id,
            e.seq,
            func.row_number()
            .over(partition_by=(e.store_id, e.bay_id, e.slot, e.device_id), order_by=e.seq.desc())
            .label("rn"),
        )
        .where(e.kind.in_(sorted(STOCK_KINDS)), e.stock_units.is_not(None), e.slot.is_not(None))
        .subquery()
    )
    d = per_device.c
    ranked = (  # between devices on one slot, the later wall time
        select(
            *[d[c] for c in ("store_id", "bay_id", "slot", "sku", "stock_units")],
            d.confirmed_at,
            d.device_id,
            d.seq,
            func.row_number()
            .over(
                partition_by=(d.store_id, d.bay_id, d.slot),
                order_by=(d.confirmed_at.desc(), d.device_id.desc()),
            )
            .label("rn"),
        )
        .where(d.rn == 1)
        .subquery()
    )
    cols = ["store_id", "bay_id", "slot", "sku", "stock_units", "confirmed_at", "device_id", "seq"]
    latest = select(*[ranked.c[c] for c in cols]).where(ranked.c.rn == 1)
    with store.writer.begin() as conn:
        conn.execute(current_stock.delete())
        conn.execute(current_stock.insert().from_select(cols, latest))
        conn.exec_driver_sql(_sql(conn.dialect.name).bump_stock)
        return int(conn.execute(select(func.count()).select_from(current_stock)).scalar_one())
