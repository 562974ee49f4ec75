"""The cloud side of the agent crash soak: the stand-in or the real cloud service, one face.

:func:`open_cloud` runs either :mod:`tests.edge.cloud_stand_in` in this process or the real
``shelfsense cloud serve`` as a child (:mod:`tests.edge.real_cloud`, a fresh SQLite store,
the sim unit's store, bay and slots registered and a unit key made for it). Both answer
:meth:`SoakCloud.highest_contiguous` (is the agent drained?) and :meth:`SoakCloud.stored`:
every event stored for the device, in arrival order, as a wire-shaped dict. The stand-in
keeps the body it received and counts redeliveries; the real cloud keeps columns, read
back through :func:`cloud.labels.export_lines`, and each uploaded window in its
``windows`` table, and counts no redeliveries.

:func:`same_event` compares what the cloud holds with what the agent committed on every
field both carry (a field only one side knows is tolerated), times as instants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tests.edge.agent_support import API_KEY, BAY, DEVICE, STORE, unit
from tests.edge.cloud_stand_in import IngestHttpServer, IngestStore
from tests.edge.real_cloud import RealCloud, real_cloud

CLOUDS = ("real", "stand-in")
# Set by the sync on a backlog batch as it is sent; the buffer stores every event unflagged.
NOT_COMPARED = frozenset({"historical"})


@dataclass(frozen=True)
class Stored:
    """One stored event of the device; ``deliveries`` is None where the cloud counts none."""

    seq: int
    event: dict[str, Any]
    deliveries: int | None


class SoakCloud(Protocol):
    """A running cloud the soak's agent syncs to."""

    @property
    def kind(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    def highest_contiguous(self, device_id: str) -> int: ...

    def stored(self, device_id: str) -> list[Stored]: ...


@dataclass
class StandInCloud:
    """The in-process stand-in: it keeps each received body and how often it came."""

    store: IngestStore
    base_url: str
    api_key: str = API_KEY
    kind: str = "stand-in"

    def highest_contiguous(self, device_id: str) -> int:
        """The device's highest contiguous stored seq."""
        return self.store.highest_contiguous(device_id)

    def stored(self, device_id: str) -> list[Stored]:
        """The device's events in arrival order, as received."""
        return [
            Stored(r["seq"], json.loads(r["body"]), r["deliveries"])
            for r in self.store.rows(device_id)
        ]


@dataclass
class RealSoakCloud:
    """The real cloud service in a child process, with its SQLite store file."""

    cloud: RealCloud
    api_key: str
    kind: str = "real"

    @property
    def base_url(self) -> str:
        """Base URL of the HTTP API."""
        return self.cloud.url

    def highest_contiguous(self, device_id: str) -> int:
        """The device's highest contiguous stored seq (``device_progress``)."""
        return self.cloud.highest_contiguous(device_id)

    def stored(self, device_id: str) -> list[Stored]:
        """The device's events in feed (arrival) order, as the cloud's export shapes them."""
        from cloud.labels import export_lines
        from cloud.store import open_store

        store = open_store(self.cloud.database_url, pool_size=1, run_migrations=False)
        try:
            with store.engine.connect() as conn:
                events = [
                    json.loads(line)["event"] for line in export_lines(conn, labeled_only=False)
                ]
        finally:
            store.dispose()
        windows = self._windows(device_id)
        return [
            Stored(e["seq"], {**e, "window": windows.get(e["seq"])}, None)
            for e in events
            if e["device_id"] == device_id
        ]

    def _windows(self, device_id: str) -> dict[int, Any]:
        """The uploaded windows of the device by seq, from the store's ``windows`` table."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.cloud.db}?mode=ro", uri=True, timeout=10)
        try:
            got = conn.execute("SELECT seq, body FROM windows WHERE device_id = ?", (device_id,))
            return {int(seq): json.loads(body) for seq, body in got}
        finally:
            conn.close()


def _sim_slots() -> list[tuple[int, str, float]]:
    """The sim unit's slots as (slot, sku, unit grams), from its scenario."""
    from firmware_bridge.sim.scenario import load_scenario

    sc = load_scenario(unit(Path("."), "")["loadcells"]["sim_scenario"])
    return [(s.slot, s.sku, s.unit_grams) for s in sc.slots]


@contextmanager
def open_cloud(kind: str, tmp: Path, name: str) -> Iterator[SoakCloud]:
    """A fresh cloud of ``kind`` (``real`` or ``stand-in``) with files under ``tmp``,
    named ``name``; the sim unit is registered and its key is the cloud's ``api_key``."""
    if kind == "stand-in":
        store = IngestStore(tmp / f"{name}.db")
        try:
            with IngestHttpServer(store, api_key=API_KEY) as server:
                yield StandInCloud(store, server.base_url)
        finally:
            store.close()
        return
    if kind != "real":
        raise ValueError(f"unknown cloud {kind!r}")
    home = tmp / name
    home.mkdir(parents=True, exist_ok=True)
    with real_cloud(home) as cloud:
        key = cloud.register(DEVICE, store_id=STORE, bay_id=BAY, slots=_sim_slots())
        yield RealSoakCloud(cloud, key)


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def compared_fields(stored: dict[str, Any], committed: dict[str, Any]) -> set[str]:
    """The fields :func:`same_event` compares: those both sides carry, bar transport flags."""
    return (stored.keys() & committed.keys()) - NOT_COMPARED


def same_event(stored: dict[str, Any], committed: dict[str, Any]) -> bool:
    """True if the cloud's event equals the committed one on every field both carry
    (``wall_time`` as an instant: the real cloud re-serialises it)."""
    for k in compared_fields(stored, committed):
        a, b = stored[k], committed[k]
        if k == "wall_time":
            a, b = _instant(a), _instant(b)
        if a != b:
            return False
    return True
