"""Interest per hour, kept at ingest so a read costs the hours it asks for, not history.

A unit sends one interest event per slot an episode concerned. A read counts
episodes, not events: per SKU, each episode that reached or handled one of the
SKU's slots, once; per bay, every episode once. Ingest keeps, in the same
transaction as the events, ``interest_sku_hours`` and ``interest_bay_hours``: per
store, SKU or bay, hour and label, the episodes, their dwell sum and count, the
longest dwell, and how many reached a slot.

Whether an event's episode is new under a key (hour, label, SKU) is read from
the events themselves: the episode's interest events stored before the batch
(``ix_events_interest_episode``, a partial index). An episode seen again only
grows its longest dwell or its reach. An event without an episode is an episode
of its own (keyed ``-seq``), new by construction: only events not stored before
come here.

:func:`changes` is the decision (values in, rows out); :func:`apply` runs it under
the ingest write lock; :func:`rebuild` recomputes the tables from the stored
events (a restore, a bulk load, the migration that introduced them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, case, func, literal, select

from cloud.store.tables import (
    copy_rows,
    driver_time,
    events,
    interest_bay_hours,
    interest_sku_hours,
    interest_versions,
    utc_naive,
)

# (device_id, episode, hour, sku or None for the bay row, label)
EpisodeKey = tuple[str, int, datetime, str | None, str]


class InterestEvent(Protocol):
    """What counting needs of an event (a wire event, or one read back from the store)."""

    @property
    def device_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def episode(self) -> int | None: ...
    @property
    def wall_time(self) -> datetime: ...
    @property
    def store(self) -> str: ...
    @property
    def bay(self) -> str: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def dwell_s(self) -> float | None: ...
    @property
    def slot(self) -> int | None: ...


class StoredInterest(NamedTuple):
    """An interest event as :func:`_stored` reads it back."""

    device_id: str
    seq: int
    episode: int | None
    wall_time: datetime
    store: str
    bay: str
    sku: str | None
    label: str
    dwell_s: float | None
    slot: int | None
    kind: str = "interest"


class Episode(NamedTuple):
    """One episode under one key, as counting needs it: where, its longest dwell, its reach.

    A named tuple: a batch makes one per interest event and key.
    """

    store_id: str
    bay_id: str
    dwell_s: float | None
    at_slot: int

    def merged(self, other: Episode) -> Episode:
        """This episode with ``other``'s events folded in (longest dwell, any reach)."""
        dwell = self.dwell_s
        if other.dwell_s is not None and (dwell is None or other.dwell_s > dwell):
            dwell = other.dwell_s
        at_slot = self.at_slot if self.at_slot >= other.at_slot else other.at_slot
        if dwell is self.dwell_s and at_slot == self.at_slot:
            return self
        return Episode(self.store_id, self.bay_id, dwell, at_slot)


@dataclass
class HourDelta:
    """What one ingest adds to one row of an hours table."""

    episodes: int = 0
    dwell_sum: float = 0.0
    dwell_n: int = 0
    dwell_max: float | None = None
    at_slot: int = 0

    def add(self, old: Episode | None, new: Episode) -> None:
        """Count ``new`` (``old``: what was kept of it before, if anything)."""
        if old is None:
            self.episodes += 1
        before = None if old is None else old.dwell_s
        if new.dwell_s is not None and new.dwell_s != before:
            self.dwell_sum += new.dwell_s - (before or 0.0)
            self.dwell_n += before is None
            if self.dwell_max is None or new.dwell_s > self.dwell_max:
                self.dwell_max = new.dwell_s
        self.at_slot += new.at_slot - (0 if old is None else old.at_slot)


@dataclass
class Changes:
    """Episodes new or grown (what each becomes), and what each hour row gains."""

    episodes: dict[EpisodeKey, Episode]
    hours: dict[tuple[str, str | None, datetime, str, str], HourDelta]


def hour_of(wall: datetime) -> datetime:
    """The UTC hour ``wall`` falls in (naive, as stored)."""
    if wall.tzinfo is None or wall.utcoffset() == _ZERO:  # UTC already: no conversion
        return datetime(wall.year, wall.month, wall.day, wall.hour)
    return utc_naive(wall).replace(minute=0, second=0, microsecond=0)


_ZERO = timedelta(0)


def batch_episodes(evs: Iterable[InterestEvent]) -> dict[EpisodeKey, Episode]:
    """The episodes a batch's interest events speak of, each key once, merged."""
    got: dict[EpisodeKey, Episode] = {}
    for ev in evs:
        if ev.kind != "interest":
            continue
        ep = ev.episode if ev.episode is not None else -ev.seq
        hour = hour_of(ev.wall_time)
        seen = Episode(ev.store, ev.bay, ev.dwell_s, 0 if ev.slot is None else 1)
        key: EpisodeKey = (ev.device_id, ep, hour, None, ev.label)
        have = got.get(key)
        got[key] = seen if have is None else have.merged(seen)
        if ev.sku is not None:
            key = (ev.device_id, ep, hour, ev.sku, ev.label)
            have = got.get(key)
            got[key] = seen if have is None else have.merged(seen)
    return got


def changes(batch: Mapping[EpisodeKey, Episode], stored: Mapping[EpisodeKey, Episode]) -> Changes:
    """What a batch changes, given the episodes of the same keys already stored."""
    out = Changes(episodes={}, hours={})
    for key, seen in batch.items():
        old = stored.get(key)
        new = seen if old is None else old.merged(seen)
        if new == old:
            continue
        out.episodes[key] = new
        _dev, _ep, hour, sku, label = key
        row = (new.store_id, sku, hour, new.bay_id, label)
        out.hours.setdefault(row, HourDelta()).add(old, new)
    return out


def _stored(conn: Connection, wanted: Iterable[EpisodeKey]) -> dict[EpisodeKey, Episode]:
    """What the events stored so far say of the episodes under ``wanted`` keys.

    Called before the batch's events are inserted, so only earlier events count.
    """
    keys = {k for k in wanted if k[1] >= 0}  # -seq: an event without episode, new
    per_device: dict[str, set[int]] = {}
    for dev, ep, *_rest in keys:
        per_device.setdefault(dev, set()).add(ep)
    sql = _sql(conn.dialect.name)
    rows: list[StoredInterest] = []
    for dev, eps in sorted(per_device.items()):
        for seq, ep, wall, *rest in conn.exec_driver_sql(*sql.episodes(dev, sorted(eps))):
            when = datetime.fromisoformat(wall) if isinstance(wall, str) else wall
            rows.append(StoredInterest(dev, seq, ep, when, *rest))
    return {k: e for k, e in batch_episodes(rows).items() if k in keys}


def apply(conn: Connection, evs: Sequence[InterestEvent]) -> None:
    """Count a batch's interest events in the hours tables, inside the ingest transaction,
    before the events themselves are inserted (none of ``evs`` may be stored yet)."""
    batch = batch_episodes(evs)
    if not batch:
        return
    todo = changes(batch, _stored(conn, batch))
    dialect = conn.dialect.name
    per_sku: list[tuple[Any, ...]] = []
    per_bay: list[tuple[Any, ...]] = []
    for (store_id, sku, hour, bay_id, label), d in todo.hours.items():
        h = driver_time(hour, dialect)
        sums = (d.episodes, d.dwell_sum, d.dwell_n, d.dwell_max, d.at_slot)
        if sku is None:
            per_bay.append((store_id, h, bay_id, label, *sums))
        else:
            per_sku.append((store_id, sku, h, bay_id, label, *sums))
    sql = _sql(dialect)
    if per_sku:
        sql.write(conn, sql.add_sku_hours, per_sku)
    if per_bay:
        sql.write(conn, sql.add_bay_hours, per_bay)
    stores = sorted({store_id for store_id, *_rest in todo.hours})
    if stores:
        conn.exec_driver_sql(sql.bump, [(s,) for s in stores])


class _Sql:
    """The statements of :func:`apply`, built once per dialect.

    SQLite takes the hour rows with ``executemany`` of one prepared upsert;
    PostgreSQL ``COPY``s them into a temporary table and upserts from it in one
    statement (row by row, even pipelined, each row cost a round of protocol work).
    """

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"
        mark = "%s" if self.postgresql else "?"
        self._episodes = (
            "SELECT seq, episode, wall_time, store_id, bay_id, sku, label, dwell_s, slot "
            f"FROM events WHERE device_id = {mark} AND kind = 'interest' "
            "AND episode IS NOT NULL AND episode "
        )
        self.bump = (
            f"INSERT INTO interest_versions (store_id, version) VALUES ({mark}, 1) "
            "ON CONFLICT (store_id) DO UPDATE SET version = interest_versions.version + 1"
        )
        self.add_sku_hours = self._add("interest_sku_hours", SKU_KEY)
        self.add_bay_hours = self._add("interest_bay_hours", BAY_KEY)

    def episodes(self, device_id: str, eps: list[int]) -> tuple[str, tuple[Any, ...]]:
        """The query for a device's stored interest events of episodes ``eps`` (at most a
        batch's worth), with its parameters."""
        if self.postgresql:
            return self._episodes + "= ANY(%s)", (device_id, eps)
        return self._episodes + f"IN ({', '.join(['?'] * len(eps))})", (device_id, *eps)

    def _add(self, t: str, key: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
        """What upserts ``rows`` into ``t``: statements to run, the last with the rows."""
        names = ", ".join(c for c, _ in (*key, ("label", "text"), *SUM_TYPES))
        conflict = ", ".join(c for c, _ in key)
        update = (
            f"ON CONFLICT ({conflict}, label) DO UPDATE SET "
            f"episodes = {t}.episodes + excluded.episodes, "
            f"dwell_sum = {t}.dwell_sum + excluded.dwell_sum, "
            f"dwell_n = {t}.dwell_n + excluded.dwell_n, "
            f"dwell_max = CASE WHEN {t}.dwell_max IS NULL THEN excluded.dwell_max "
            f"WHEN excluded.dwell_max IS NULL THEN {t}.dwell_max "
            f"WHEN excluded.dwell_max > {t}.dwell_max THEN excluded.dwell_max "
            f"ELSE {t}.dwell_max END, "
            f"at_slot = {t}.at_slot + excluded.at_slot"
        )
        if not self.postgresql:
            marks = ", ".join(["?"] * len(names.split(", ")))
            return (f"INSERT INTO {t} ({names}) VALUES ({marks}) {update}",)
        staged = f"{t}_batch"
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {staged} (LIKE {t}) ON COMMIT DELETE ROWS",
            f"COPY {staged} ({names}) FROM STDIN",
            f"INSERT INTO {t} ({names}) SELECT {names} FROM {staged} {update}",
        )

    def write(self, conn: Connection, stmts: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` with the statements of :meth:`_add`."""
        if not self.postgresql:
            conn.exec_driver_sql(stmts[0], rows)
            return
        create, copy, insert = stmts
        made = conn.connection.info.setdefault("interest_batch_tables", set())
        if create not in made:  # a temporary table lives as long as its connection
            conn.exec_driver_sql(create)
            made.add(create)
        copy_rows(conn, copy, rows)
        conn.exec_driver_sql(insert)


SKU_KEY = (("store_id", "text"), ("sku", "text"), ("hour", "timestamp"), ("bay_id", "text"))
BAY_KEY = (("store_id", "text"), ("hour", "timestamp"), ("bay_id", "text"))
SUM_TYPES = (("episodes", "bigint"), ("dwell_sum", "float8"), ("dwell_n", "bigint"),
             ("dwell_max", "float8"), ("at_slot", "bigint"))  # fmt: skip
SUMS = tuple(c for c, _ in SUM_TYPES)


@functools.cache
def _sql(dialect: str) -> _Sql:
    return _Sql(dialect)


def hour_expr(dialect: str, column: Any) -> Any:
    """SQL for the hour a stored time falls in, equal to how a bound hour is stored."""
    if dialect == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00.000000", column)


def version(conn: Connection, store: str | None) -> int:
    """A figure that grows whenever ingest changes ``store``'s interest (any store's: None)."""
    v = interest_versions.c
    if store is None:
        got = conn.execute(select(func.coalesce(func.sum(v.version), 0))).scalar()
    else:
        got = conn.execute(select(v.version).where(v.store_id == store)).scalar()
    return int(got or 0)


def rebuild(conn: Connection) -> None:
    """Recompute the hours tables from the stored interest events; every store's
    version grows, so no cached answer outlives it."""
    e = events.c
    hour = hour_expr(conn.dialect.name, e.wall_time).label("hour")
    ep = func.coalesce(e.episode, -e.seq)
    for table, per_sku in ((interest_sku_hours, True), (interest_bay_hours, False)):
        conn.execute(table.delete())
        keys = [e.device_id, ep, hour, *([e.sku] if per_sku else []), e.label]
        episodes = (
            select(
                func.min(e.store_id).label("store_id"),
                func.min(e.bay_id).label("bay_id"),
                *([e.sku.label("sku")] if per_sku else []),
                hour,
                e.label.label("label"),
                func.max(e.dwell_s).label("dwell_s"),
                func.max(case((e.slot.is_not(None), 1), else_=0)).label("at_slot"),
            )
            .where(e.kind == "interest", *([e.sku.is_not(None)] if per_sku else []))
            .group_by(*keys)
            .subquery()
        )
        p = episodes.c
        group = [p.store_id, *([p.sku] if per_sku else []), p.hour, p.bay_id, p.label]
        sums = [
            func.count().label("episodes"),
            func.coalesce(func.sum(p.dwell_s), literal(0.0)).label("dwell_sum"),
            func.count(p.dwell_s).label("dwell_n"),
            func.max(p.dwell_s).label("dwell_max"),
            func.sum(p.at_slot).label("at_slot"),
        ]
        names = [c.name for c in group] + list(SUMS)
        conn.execute(table.insert().from_select(names, select(*group, *sums).group_by(*group)))
    v = interest_versions.c
    conn.execute(interest_versions.update().values(version=v.version + 1))
    known = select(v.store_id)
    fresh = (
        select(interest_bay_hours.c.store_id, literal(1))
        .where(interest_bay_hours.c.store_id.not_in(known))
        .distinct()
    )
    conn.execute(interest_versions.insert().from_select(["store_id", "version"], fresh))
