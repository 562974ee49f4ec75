"""Interest per hour, kept at ingest so a read costs the hours it asks for, not history.

A unit sends one interest event per slot an episode concerned. A read counts
episodes, not events: per SKU, each episode that reached or handled one of the
SKU's slots, once; per bay, every episode once. Ingest therefore keeps, in the
same transaction as the events:

- ``interest_sku_episodes`` / ``interest_bay_episodes``: each episode once per
  hour, label (and SKU) with the longest dwell its events carried and whether one
  of them named a slot: what says whether a later event of the episode is new;
- ``interest_sku_hours`` / ``interest_bay_hours``: the sums a read answers with
  (episodes, dwell sum and count, longest dwell, episodes that reached a slot).

:func:`changes` is the decision (values in, rows out); :func:`apply` runs it under
the ingest write lock; :func:`rebuild` recomputes everything from the stored
events (a restore, a bulk load, the migration that introduced the tables).
An event without an episode is an episode of its own (keyed ``-seq``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from cloud.store.tables import (
    events,
    interest_bay_episodes,
    interest_bay_hours,
    interest_sku_episodes,
    interest_sku_hours,
    utc_naive,
)
from models.wire import ShelfEvent

# (device_id, episode, hour, sku or None for the bay row, label)
EpisodeKey = tuple[str, int, datetime, str | None, str]


@dataclass(frozen=True)
class Episode:
    """What is kept of one episode under one key: where it was, its dwell, its reach."""

    store_id: str
    bay_id: str
    dwell_s: float | None
    at_slot: int

    def merged(self, other: Episode) -> Episode:
        """This episode with ``other``'s events folded in (longest dwell, any reach)."""
        dwell = self.dwell_s
        if other.dwell_s is not None and (dwell is None or other.dwell_s > dwell):
            dwell = other.dwell_s
        return replace(self, dwell_s=dwell, at_slot=max(self.at_slot, other.at_slot))


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
    """Rows to write: episodes new or grown, and what each hour row gains."""

    episodes: dict[EpisodeKey, Episode]
    inserted: set[EpisodeKey]
    hours: dict[tuple[str, str | None, datetime, str, str], HourDelta]


def hour_of(wall: datetime) -> datetime:
    """The UTC hour ``wall`` falls in (naive, as stored)."""
    return utc_naive(wall).replace(minute=0, second=0, microsecond=0)


def batch_episodes(evs: Iterable[ShelfEvent]) -> dict[EpisodeKey, Episode]:
    """The episodes a batch's interest events speak of, each key once, merged."""
    got: dict[EpisodeKey, Episode] = {}
    for ev in evs:
        if ev.kind != "interest":
            continue
        ep = ev.episode if ev.episode is not None else -ev.seq
        hour = hour_of(ev.wall_time)
        seen = Episode(ev.store, ev.bay, ev.dwell_s, int(ev.slot is not None))
        keys: list[EpisodeKey] = [(ev.device_id, ep, hour, None, ev.label)]
        if ev.sku is not None:
            keys.append((ev.device_id, ep, hour, ev.sku, ev.label))
        for k in keys:
            have = got.get(k)
            got[k] = seen if have is None else have.merged(seen)
    return got


def changes(batch: Mapping[EpisodeKey, Episode], stored: Mapping[EpisodeKey, Episode]) -> Changes:
    """What a batch changes, given the episodes of the same keys already stored."""
    out = Changes(episodes={}, inserted=set(), hours={})
    for key, seen in batch.items():
        old = stored.get(key)
        new = seen if old is None else old.merged(seen)
        if new == old:
            continue
        out.episodes[key] = new
        if old is None:
            out.inserted.add(key)
        _dev, _ep, hour, sku, label = key
        row = (new.store_id, sku, hour, new.bay_id, label)
        out.hours.setdefault(row, HourDelta()).add(old, new)
    return out


def _stored(conn: Connection, keys: Iterable[EpisodeKey]) -> dict[EpisodeKey, Episode]:
    """The episodes of ``keys`` already stored (read by device and episode)."""
    wanted = set(keys)
    per_device: dict[str, set[int]] = {}
    for dev, ep, *_rest in wanted:
        per_device.setdefault(dev, set()).add(ep)
    got: dict[EpisodeKey, Episode] = {}
    for table, per_sku in ((interest_sku_episodes, True), (interest_bay_episodes, False)):
        t = table.c
        for dev, eps in sorted(per_device.items()):
            ordered = sorted(eps)
            for i in range(0, len(ordered), 500):
                stmt = select(table).where(t.device_id == dev, t.episode.in_(ordered[i : i + 500]))
                for r in conn.execute(stmt):
                    sku = r.sku if per_sku else None
                    k = (r.device_id, int(r.episode), utc_naive(r.hour), sku, r.label)
                    if k in wanted:
                        got[k] = Episode(r.store_id, r.bay_id, r.dwell_s, int(r.at_slot))
    return got


def _insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _upsert_episodes(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    ins = _insert(conn.dialect.name, table)
    stmt = ins.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"dwell_s": ins.excluded.dwell_s, "at_slot": ins.excluded.at_slot},
    )
    conn.execute(stmt, rows)


def _add_hours(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    ins = _insert(conn.dialect.name, table)
    t, ex = table.c, ins.excluded
    stmt = ins.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={
            "episodes": t.episodes + ex.episodes,
            "dwell_sum": t.dwell_sum + ex.dwell_sum,
            "dwell_n": t.dwell_n + ex.dwell_n,
            "dwell_max": case(
                (t.dwell_max.is_(None), ex.dwell_max),
                (ex.dwell_max.is_(None), t.dwell_max),
                (ex.dwell_max > t.dwell_max, ex.dwell_max),
                else_=t.dwell_max,
            ),
            "at_slot": t.at_slot + ex.at_slot,
        },
    )
    conn.execute(stmt, rows)


def apply(conn: Connection, evs: Sequence[ShelfEvent]) -> None:
    """Fold newly stored events into the interest tables (inside the ingest transaction)."""
    batch = batch_episodes(evs)
    if not batch:
        return
    todo = changes(batch, _stored(conn, batch))
    per_sku: list[dict[str, Any]] = []
    per_bay: list[dict[str, Any]] = []
    for (dev, ep, hour, sku, label), e in sorted(todo.episodes.items(), key=_order):
        row = {"device_id": dev, "episode": ep, "hour": hour, "label": label, **vars(e)}
        _split(row, sku, per_sku, per_bay)
    _write(
        conn, _upsert_episodes, (interest_sku_episodes, per_sku), (interest_bay_episodes, per_bay)
    )
    per_sku, per_bay = [], []
    for (store_id, sku, hour, bay_id, label), d in sorted(todo.hours.items(), key=_order):
        row = {"store_id": store_id, "hour": hour, "bay_id": bay_id, "label": label, **vars(d)}
        _split(row, sku, per_sku, per_bay)
    _write(conn, _add_hours, (interest_sku_hours, per_sku), (interest_bay_hours, per_bay))


def _split(
    row: dict[str, Any],
    sku: str | None,
    per_sku: list[dict[str, Any]],
    per_bay: list[dict[str, Any]],
) -> None:
    if sku is None:
        per_bay.append(row)
    else:
        per_sku.append({**row, "sku": sku})


def _write(conn: Connection, how: Any, *tables: tuple[Table, list[dict[str, Any]]]) -> None:
    for table, rows in tables:
        if rows:
            how(conn, table, rows)


def _order(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in item[0])


def hour_expr(dialect: str, column: Any) -> Any:
    """SQL for the hour a stored time falls in, equal to how a bound hour is stored."""
    if dialect == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00.000000", column)


def rebuild(conn: Connection) -> None:
    """Recompute every interest table from the stored interest events."""
    for table in (interest_sku_hours, interest_bay_hours, interest_sku_episodes,
                  interest_bay_episodes):  # fmt: skip
        conn.execute(table.delete())
    e = events.c
    hour = hour_expr(conn.dialect.name, e.wall_time).label("hour")
    ep = func.coalesce(e.episode, -e.seq).label("episode")
    common = [
        func.min(e.store_id).label("store_id"),
        func.min(e.bay_id).label("bay_id"),
        func.max(e.dwell_s).label("dwell_s"),
        func.max(case((e.slot.is_not(None), 1), else_=0)).label("at_slot"),
    ]
    interest = e.kind == "interest"
    for table, per_sku in ((interest_sku_episodes, True), (interest_bay_episodes, False)):
        keys = [e.device_id, ep, hour, *([e.sku] if per_sku else []), e.label]
        stmt = select(*keys, *common).where(interest)
        if per_sku:
            stmt = stmt.where(e.sku.is_not(None))
        names = ["device_id", "episode", "hour", *(["sku"] if per_sku else []), "label"]
        cols = [*names, "store_id", "bay_id", "dwell_s", "at_slot"]
        conn.execute(table.insert().from_select(cols, stmt.group_by(*keys)))
    for hours, eps, per_sku in (
        (interest_sku_hours, interest_sku_episodes, True),
        (interest_bay_hours, interest_bay_episodes, False),
    ):
        p = eps.c
        keys = [p.store_id, *([p.sku] if per_sku else []), p.hour, p.bay_id, p.label]
        sums = [
            func.count().label("episodes"),
            func.coalesce(func.sum(p.dwell_s), literal(0.0)).label("dwell_sum"),
            func.count(p.dwell_s).label("dwell_n"),
            func.max(p.dwell_s).label("dwell_max"),
            func.sum(p.at_slot).label("at_slot"),
        ]
        names = [c.name for c in keys] + [
            "episodes",
            "dwell_sum",
            "dwell_n",
            "dwell_max",
            "at_slot",
        ]
        conn.execute(hours.insert().from_select(names, select(*keys, *sums).group_by(*keys)))
