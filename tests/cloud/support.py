"""The real app on a loopback port (:mod:`cloud.loopback`), and events and keys for tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from cloud.keys import Role, create_key
from cloud.loopback import make_key as make_key
from cloud.loopback import register_unit as register_unit
from cloud.loopback import serve_in_thread
from cloud.schemas import BayCreate, DeviceCreate, StoreCreate
from cloud.settings import CloudSettings
from cloud.store import Store


@dataclass
class Live:
    """A running app: its base URL, settings and store."""

    url: str
    settings: CloudSettings
    store: Store
    server: uvicorn.Server

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client, with ``token`` as bearer key if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def serve(settings: CloudSettings, *, mqtt: bool = False) -> Iterator[Live]:
    """The app for ``settings`` under uvicorn in a thread on a free loopback port."""
    with serve_in_thread(settings, mqtt=mqtt) as served:
        yield Live(served.url, settings, served.store, served.server)


def register_fleet(store: Store, units: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Register every ``device: (store, bay)`` (stores and bays as needed); a unit key each."""
    from cloud import fleet
    from cloud.store.tables import bays, stores

    with store.writer.begin() as conn:
        have_stores = set(conn.execute(select(stores.c.store_id)).scalars())
        have_bays = {tuple(r) for r in conn.execute(select(bays.c.store_id, bays.c.bay_id))}
        tokens = {}
        for device_id, (store_id, bay) in sorted(units.items()):
            if store_id not in have_stores:
                fleet.add_store(conn, StoreCreate(store_id=store_id, name=""))
                have_stores.add(store_id)
            if (store_id, bay) not in have_bays:
                fleet.add_bay(conn, store_id, BayCreate(bay_id=bay, name=""))
                have_bays.add((store_id, bay))
            fleet.add_device(
                conn, DeviceCreate(device_id=device_id, store_id=store_id, bay_id=bay, name="")
            )
            tokens[device_id] = create_key(conn, role=Role.UNIT, device_id=device_id).token
    return tokens


def event(
    device_id: str,
    seq: int,
    *,
    t: datetime | None = None,
    kind: str = "stock",
    label: str = "removal",
    store: str = "store-1",
    bay: str = "bay-1",
    slot: int | None = 0,
    sku: str | None = "SKU-1",
    stock_units: int | None = None,
    units: int | None = -1,
    dwell_s: float | None = None,
) -> dict[str, Any]:
    """A wire event as JSON-ready dict."""
    when = t or datetime.now(UTC) - timedelta(seconds=60)
    return {
        "device_id": device_id,
        "seq": seq,
        "wall_time": when.isoformat(),
        "mono_time": float(seq),
        "store": store,
        "bay": bay,
        "slot": slot,
        "sku": sku,
        "kind": kind,
        "label": label,
        "confidence": 0.9,
        "units": units,
        "stock_units": stock_units,
        "dwell_s": dwell_s,
    }


def batch(device_id: str, seqs: range | list[int], **kw: Any) -> dict[str, Any]:
    """An EventBatch of ``seqs``."""
    return {"device_id": device_id, "events": [event(device_id, s, **kw) for s in seqs]}


def gz(doc: Any) -> bytes:
    """``doc`` as gzip JSON."""
    return gzip.compress(json.dumps(doc).encode())


def count_events(store: Store, device_id: str | None = None) -> int:
    """Events stored (of one device if given)."""
    from sqlalchemy import func, select

    from cloud.store.tables import events

    stmt = select(func.count()).select_from(events)
    if device_id is not None:
        stmt = stmt.where(events.c.device_id == device_id)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
