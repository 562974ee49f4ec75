"""Training labels: POS sales matched to removal events, staff corrections, the JSONL export.

Workflow: the backend posts a sale (store, SKU, quantity, time); :func:`match_sale`
labels unlabelled ``removal`` events of that store and SKU inside the window
``[sold_at - before, sold_at + after]`` (a weight that went down, called ``removal``
by the model that decided or by a candidate shadowing it), nearest first, until the sale's units
are covered (a sale may stay partly unmatched until late events arrive;
:func:`match_pending` retries). Staff correct one event with :func:`add_correction`;
a correction overrides whatever label the event had.

Export format (what training reads), one JSON object per line, in event-id order::

    {"event_id": 123,                      # the cloud's id of the event
     "event": {...},                       # the event as the unit sent it (models.wire.ShelfEvent)
     "true_label": "removal" | null,       # the label to train on, null when unlabelled
     "label_source": "pos" | "staff" | null,
     "sale_id": 9 | null, "note": "", "labeled_at": "2026-11-22T14:00:00+00:00" | null}

``event.label`` is what the unit decided; ``true_label`` is the ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloud.errors import InvalidEventError, NotFoundError
from cloud.schemas import CorrectionCreate, CorrectionPublic, SaleCreate, SalePublic
from cloud.settings import CloudSettings
from cloud.store import Store
from cloud.store.tables import events, labels, sales, utc_naive
from models.atomic import atomic_write
from models.labels import INTEREST_LABELS, STOCK_LABELS

LEVEL_LABELS = ("ok", "low", "out")  # computed from levels, not predicted (models.wire)
TAXONOMY: dict[str, tuple[str, ...]] = {
    "interest": INTEREST_LABELS,
    "stock": STOCK_LABELS,
    "level": LEVEL_LABELS,
}


@dataclass(frozen=True)
class SaleWindow:
    """How long before and after a sale a removal may have happened."""

    before: timedelta
    after: timedelta

    @classmethod
    def of(cls, settings: CloudSettings) -> SaleWindow:
        """The window the settings give (``sale_window_before_s`` / ``_after_s``)."""
        return cls(
            timedelta(seconds=settings.sale_window_before_s),
            timedelta(seconds=settings.sale_window_after_s),
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _sale(conn: Connection, sale_id: int) -> SalePublic:
    row = conn.execute(select(sales).where(sales.c.id == sale_id)).first()
    if row is None:
        raise NotFoundError(f"no sale {sale_id}", field="sale_id")
    matched = conn.execute(
        select(labels.c.event_id).where(labels.c.sale_id == sale_id).order_by(labels.c.event_id)
    ).scalars()
    m = row._mapping
    return SalePublic(
        id=m["id"],
        store_id=m["store_id"],
        sku=m["sku"],
        quantity=m["quantity"],
        sold_at=m["sold_at"],
        matched_units=m["matched_units"],
        matched_event_ids=list(matched),
    )


def match_sale(conn: Connection, sale_id: int, window: SaleWindow) -> list[int]:
    """Label removals for the unmatched units of one sale; returns the event ids labelled."""
    s = conn.execute(select(sales).where(sales.c.id == sale_id)).one()
    need = s.quantity - s.matched_units
    if need <= 0:
        return []
    sold = utc_naive(s.sold_at)
    e = events.c
    candidates = list(
        conn.execute(
            select(e.id, e.wall_time, e.units)
            .select_from(events.outerjoin(labels, labels.c.event_id == e.id))
            .where(
                e.kind == "stock",
                # the removals of the model that decided and of a candidate in shadow
                # beside it: a sale scores both alike (cloud.shadow_labels)
                (e.label == "removal") | (e.shadow_label == "removal"),
                e.units < 0,
                e.store_id == s.store_id,
                e.sku == s.sku,
                e.wall_time >= sold - window.before,
                e.wall_time <= sold + window.after,
                labels.c.event_id.is_(None),
            )
        )
    )
    candidates.sort(key=lambda r: (abs((utc_naive(r.wall_time) - sold).total_seconds()), r.id))
    chosen: list[int] = []
    covered = 0
    for r in candidates:
        if covered >= need:
            break
        chosen.append(int(r.id))
        covered += max(1, abs(r.units or 1))
    if not chosen:
        return []
    now = _now()
    conn.execute(
        insert(labels),
        [
            {
                "event_id": i,
                "label": "removal",
                "source": "pos",
                "sale_id": sale_id,
                "note": "",
                "created_at": now,
            }
            for i in chosen
        ],
    )
    conn.execute(
        update(sales)
        .where(sales.c.id == sale_id)
        .values(matched_units=s.matched_units + min(covered, need))
    )
    return chosen


def add_sale(conn: Connection, body: SaleCreate, window: SaleWindow) -> SalePublic:
    """Store a sale and match it against the removals stored so far."""
    got = conn.execute(
        insert(sales)
        .values(
            store_id=body.store_id,
            sku=body.sku,
            quantity=body.quantity,
            sold_at=body.sold_at,
            received_at=_now(),
            matched_units=0,
        )
        .returning(sales.c.id)
    ).scalar_one()
    match_sale(conn, int(got), window)
    return _sale(conn, int(got))


def match_pending(conn: Connection, window: SaleWindow) -> int:
    """Retry every sale not yet fully matched (events may have arrived since); returns labels made."""
    ids = conn.execute(
        select(sales.c.id).where(sales.c.matched_units < sales.c.quantity).order_by(sales.c.id)
    ).scalars()
    return sum(len(match_sale(conn, int(i), window)) for i in list(ids))


def rematch(store: Store, window: SaleWindow | None) -> None:
    """Retry every sale not fully matched, in its own transaction (nothing without ``window``)."""
    if window is not None:
        with store.writer.begin() as conn:
            match_pending(conn, window)


def add_correction(conn: Connection, body: CorrectionCreate) -> CorrectionPublic:
    """Set the true label of one event; overrides a label from a sale match."""
    row = conn.execute(
        select(events.c.id, events.c.kind, events.c.label).where(
            events.c.device_id == body.device_id, events.c.seq == body.seq
        )
    ).first()
    if row is None:
        raise NotFoundError(f"no event {body.device_id}/{body.seq}", field="seq")
    allowed = TAXONOMY.get(row.kind, ())
    if body.label not in allowed:
        raise InvalidEventError(
            f"{body.label!r} is not a {row.kind} label; one of {', '.join(allowed)}",
            field="label",
            code="unknown_label",
        )
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(labels)
    values = {
        "event_id": row.id,
        "label": body.label,
        "source": "staff",
        "sale_id": None,
        "note": body.note,
        "created_at": _now(),
    }
    conn.execute(
        ins.values(**values).on_conflict_do_update(
            index_elements=["event_id"],
            set_={k: v for k, v in values.items() if k != "event_id"},
        )
    )
    return CorrectionPublic(
        event_id=row.id,
        device_id=body.device_id,
        seq=body.seq,
        label=body.label,
        previous_label=row.label,
        source="staff",
        note=body.note,
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def export_lines(
    conn: Connection,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    labeled_only: bool = True,
    chunk: int = 5000,
) -> Iterator[str]:
    """The export, one JSON line (with newline) per event, in event-id order."""
    e = events.c
    after = 0
    while True:
        stmt = (
            select(
                events,
                labels.c.label.label("true_label"),
                labels.c.source.label("label_source"),
                labels.c.sale_id,
                labels.c.note,
                labels.c.created_at.label("labeled_at"),
            )
            .select_from(events.outerjoin(labels, labels.c.event_id == e.id))
            .where(e.id > after)
            .order_by(e.id)
            .limit(chunk)
        )
        if labeled_only:
            stmt = stmt.where(labels.c.event_id.is_not(None))
        if kind is not None:
            stmt = stmt.where(e.kind == kind)
        if since is not None:
            stmt = stmt.where(e.wall_time >= utc_naive(since))
        rows = conn.execute(stmt).all()
        for r in rows:
            yield json.dumps(_export_obj(r._mapping), separators=(",", ":")) + "\n"
        if len(rows) < chunk:
            return
        after = int(rows[-1].id)


def _export_obj(m: Any) -> dict[str, Any]:
    event = {
        "device_id": m["device_id"],
        "seq": m["seq"],
        "wall_time": _iso(m["wall_time"]),
        "mono_time": m["mono_time"],
        "store": m["store_id"],
        "bay": m["bay_id"],
        "slot": m["slot"],
        "sku": m["sku"],
        "kind": m["kind"],
        "label": m["label"],
        "confidence": m["confidence"],
        "units": m["units"],
        "grams": m["grams"],
        "stock_units": m["stock_units"],
        "dwell_s": m["dwell_s"],
        "episode": m["episode"],
        "model_version": m["model_version"],
        "decided_by": m["decided_by"],
        "historical": bool(m["historical"]),
        "features": m["features"] or {},
    }
    return {
        "event_id": m["id"],
        "event": event,
        "true_label": m["true_label"],
        "label_source": m["label_source"],
        "sale_id": m["sale_id"],
        "note": m["note"] or "",
        "labeled_at": _iso(m["labeled_at"]),
    }


def write_export(
    store: Store,
    path: Path,
    *,
    window: SaleWindow | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    labeled_only: bool = True,
) -> int:
    """Write the JSONL export to ``path`` atomically (temp file + ``os.replace``); returns lines.

    With ``window``, sales not yet fully matched are retried first.
    """
    rematch(store, window)
    n = 0
    with atomic_write(path) as f, store.engine.connect() as conn:
        for line in export_lines(conn, kind=kind, since=since, labeled_only=labeled_only):
            f.write(line)
            n += 1
    return n
