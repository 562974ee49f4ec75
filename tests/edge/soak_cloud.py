"""The real cloud service for whole-agent runs and the crash soak, and how to compare events.

:func:`open_cloud` runs ``shelfsense cloud serve`` as a child (:mod:`tests.edge.real_cloud`,
a fresh SQLite store, the sim unit's store, bay and slots registered and a unit key made
for it). :meth:`SoakCloud.highest_contiguous` tells whether the agent is drained;
:meth:`SoakCloud.stored` is every event stored for the device, in arrival order, as a
wire-shaped dict read back through :func:`cloud.labels.export_lines`, with its uploaded
window from the store's ``windows`` table. The cloud stores each (device, seq) once and
counts no redeliveries.

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
from typing import Any

from tests.edge.agent_support import BAY, DEVICE, STORE, unit
from tests.edge.real_cloud import RealCloud, real_cloud

# Set by the sync on a backlog batch as it is sent; the buffer stores every event unflagged.
NOT_COMPARED = frozenset({"historical"})


@dataclass(frozen=True)
class Stored:
    """One stored event of the device."""

    seq: int
    event: dict[str, Any]


@dataclass
class SoakCloud:
    """The real cloud service in a child process, with its SQLite store file."""

    cloud: RealCloud
    api_key: str

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
            Stored(e["seq"], {**e, "window": windows.get(e["seq"])})
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
def open_cloud(tmp: Path, name: str) -> Iterator[SoakCloud]:
    """A fresh cloud with files under ``tmp / name``; the sim unit is registered (with its
    slots) and its key is the cloud's ``api_key``."""
    home = tmp / name
    home.mkdir(parents=True, exist_ok=True)
    with real_cloud(home) as cloud:
        key = cloud.register(DEVICE, store_id=STORE, bay_id=BAY, slots=_sim_slots())
        yield SoakCloud(cloud, key)


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
