"""Training data from the store: the windows units uploaded, with the labels the cloud holds.

A unit uploads the :class:`~models.window.EventWindow` it decided on with the first
event of that window (``windows`` table); the window's other events follow it with
consecutive seqs and the same ``episode``. Its interest events, if any, are the
episode's interest decision (one per slot it concerns, all with the same label);
its ``stock`` events are its changes, in order.

:func:`labelled_windows` joins them: one :class:`~models.dataset.LabeledWindow` per
uploaded window, the interest label from the true label of its interest event, one
stock label per change from its stock events (staff corrections, POS matches). Labels
the unit decided itself are never used as truth. Windows come in wall-time order of
their first event, so "the last fifth" is the most recent fifth of the fleet's data.

:func:`write_windows` writes the ``models.dataset`` JSONL that ``shelfsense cloud train``
reads, each line with a ``source`` (device, seq, wall time) beside the record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, select, tuple_

from cloud.labels import SaleWindow, rematch
from cloud.store import Store
from cloud.store.tables import events, labels, utc_naive, windows
from models.atomic import atomic_write
from models.dataset import LabeledWindow
from models.window import EventWindow
from models.wire import MAX_WINDOW_ITEMS

log = logging.getLogger(__name__)

MAX_FOLLOWERS = 3 * MAX_WINDOW_ITEMS  # an interest event per slot, a stock and a level per change


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """A window from the store, with where it came from."""

    device_id: str
    seq: int
    wall_time: datetime
    record: LabeledWindow

    def line(self) -> str:
        """The JSON line (with newline) of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), separators=(",", ":")) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The ``models.dataset`` record plus its ``source``."""
        wall = self.wall_time if self.wall_time.tzinfo else self.wall_time.replace(tzinfo=UTC)
        return {
            **self.record.to_dict(),
            "source": {"device_id": self.device_id, "seq": self.seq, "wall_time": wall.isoformat()},
        }


@dataclass(frozen=True, slots=True)
class _Carrier:
    device_id: str
    seq: int
    wall_time: datetime
    episode: int | None
    body: dict[str, Any]


def _carriers(conn: Connection, since: datetime | None, chunk: int) -> Iterator[list[_Carrier]]:
    """Events carrying a window, in chunks, by (wall time, id)."""
    e, w = events.c, windows.c
    after: tuple[datetime, int] | None = None
    while True:
        stmt = (
            select(e.id, e.device_id, e.seq, e.wall_time, e.episode, w.body)
            .select_from(events.join(windows, and_(w.device_id == e.device_id, w.seq == e.seq)))
            .order_by(e.wall_time, e.id)
            .limit(chunk)
        )
        if since is not None:
            stmt = stmt.where(e.wall_time >= utc_naive(since))
        if after is not None:
            stmt = stmt.where(tuple_(e.wall_time, e.id) > tuple_(utc_naive(after[0]), after[1]))
        rows = conn.execute(stmt).all()
        if not rows:
            return
        yield [
            _Carrier(
                r.device_id,
                int(r.seq),
                r.wall_time,
                r.episode,
                r.body if isinstance(r.body, dict) else json.loads(r.body),
            )
            for r in rows
        ]
        if len(rows) < chunk:
            return
        after = (rows[-1].wall_time, int(rows[-1].id))


def _followers(conn: Connection, carriers: list[_Carrier]) -> dict[tuple[str, int], Any]:
    """Every event (with its true label) that may belong to one of ``carriers``."""
    spans: dict[str, tuple[int, int]] = {}
    for c in carriers:
        lo, hi = spans.get(c.device_id, (c.seq, c.seq))
        spans[c.device_id] = (min(lo, c.seq), max(hi, c.seq + MAX_FOLLOWERS))
    e = events.c
    out: dict[tuple[str, int], Any] = {}
    for device_id, (lo, hi) in spans.items():
        stmt = (
            select(
                e.device_id,
                e.seq,
                e.kind,
                e.slot,
                e.units,
                e.episode,
                labels.c.label.label("true_label"),
                windows.c.seq.label("carrier"),
            )
            .select_from(
                events.outerjoin(labels, labels.c.event_id == e.id).outerjoin(
                    windows, and_(windows.c.device_id == e.device_id, windows.c.seq == e.seq)
                )
            )
            .where(e.device_id == device_id, e.seq.between(lo, hi))
        )
        for r in conn.execute(stmt):
            out[(r.device_id, int(r.seq))] = r
    return out


def _record(c: _Carrier, rows: dict[tuple[str, int], Any]) -> LabeledWindow | None:
    """The labelled window of one carrier, or ``None`` when its upload does not read."""
    try:
        window = EventWindow.from_dict(c.body)
    except (KeyError, TypeError, ValueError) as err:
        log.warning("window of %s/%d does not read: %s", c.device_id, c.seq, err)
        return None
    group = [rows[(c.device_id, c.seq)]]
    s = c.seq + 1
    while (row := rows.get((c.device_id, s))) is not None and row.carrier is None:
        if row.episode != c.episode or len(group) > MAX_FOLLOWERS:
            break
        group.append(row)
        s += 1
    said = [r.true_label for r in group if r.kind == "interest"]  # one per slot concerned
    interest = next((lab for lab in said if lab is not None), None)
    stock_rows = [r for r in group if r.kind == "stock"]
    stock: tuple[str | None, ...] = ()
    fits = len(stock_rows) == len(window.changes) and all(
        r.slot == ch.slot and r.units == ch.units
        for r, ch in zip(stock_rows, window.changes, strict=False)
    )
    if fits:
        stock = tuple(r.true_label for r in stock_rows)
    elif window.changes:
        log.warning(
            "window of %s/%d: %d stock events for %d changes; its stock labels are left out",
            c.device_id,
            c.seq,
            len(stock_rows),
            len(window.changes),
        )
    try:
        return LabeledWindow(window=window, interest=interest, stock=stock)
    except ValueError as err:
        log.warning("window of %s/%d: %s", c.device_id, c.seq, err)
        return None


def labelled_windows(
    conn: Connection,
    *,
    labeled_only: bool = True,
    since: datetime | None = None,
    chunk: int = 2000,
) -> Iterator[StoredWindow]:
    """Uploaded windows with their labels, oldest first (see the module doc)."""
    for carriers in _carriers(conn, since, chunk):
        rows = _followers(conn, carriers)
        for c in carriers:
            rec = _record(c, rows)
            if rec is None or (labeled_only and not rec.labelled):
                continue
            yield StoredWindow(c.device_id, c.seq, c.wall_time, rec)


def read_windows(
    store: Store, *, window: SaleWindow | None = None, labeled_only: bool = False
) -> list[LabeledWindow]:
    """Every uploaded window (unlabelled too, by default: they serve pretraining).

    With ``window``, sales not yet fully matched are retried first.
    """
    rematch(store, window)
    with store.engine.connect() as conn:
        return [w.record for w in labelled_windows(conn, labeled_only=labeled_only)]


def write_windows(
    store: Store,
    path: Path,
    *,
    window: SaleWindow | None = None,
    labeled_only: bool = True,
    since: datetime | None = None,
) -> int:
    """Write the windows JSONL to ``path`` atomically; returns the lines written.

    With ``window``, sales not yet fully matched are retried first.
    """
    rematch(store, window)
    n = 0
    with atomic_write(path) as f, store.engine.connect() as conn:
        for w in labelled_windows(conn, labeled_only=labeled_only, since=since):
            f.write(w.line())
            n += 1
    return n
