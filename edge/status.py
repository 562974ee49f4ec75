"""``shelfsense edge status``: what the unit is doing, read from disk only.

It reads the status file the health worker writes atomically and opens the buffer
database read-only; it never talks to the running agent, so it works when the agent
is stuck or stopped (the file's age then says how stale the picture is).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.health import read_status


def buffer_paths(config: Config) -> tuple[Path, Path]:
    """The buffer database and status file of a unit config."""
    data = Path(config.unit.data_dir)
    return data / config.buffer.file, data / config.health.status_file


def read_buffer(path: Path) -> dict[str, Any]:
    """Depth, oldest unsent row, last sync and last seq from the database, read-only."""
    if not path.exists():
        return {"present": False}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as err:
        return {"present": True, "error": str(err)}
    try:
        depth, oldest = conn.execute(
            "SELECT count(*), min(created) FROM outbox WHERE synced_at IS NULL"
        ).fetchone()
        synced, last_sync = conn.execute(
            "SELECT count(*), max(synced_at) FROM outbox WHERE synced_at IS NOT NULL"
        ).fetchone()
        row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return {
            "present": True,
            "depth": int(depth),
            "oldest_unsynced": oldest,
            "synced_rows": int(synced),
            "last_synced_at": last_sync,
            "seq": int(row[0]) if row else 0,
            "file_bytes": path.stat().st_size,
        }
    except sqlite3.Error as err:
        return {"present": True, "error": str(err)}
    finally:
        conn.close()


def collect(config: Config, *, now: float | None = None) -> dict[str, Any]:
    """Everything ``edge status`` shows, as a JSON-ready dict."""
    now = time.time() if now is None else now
    db_path, status_path = buffer_paths(config)
    buf = read_buffer(db_path)
    health = read_status(status_path)
    gauges = (health or {}).get("gauges", {})
    oldest = buf.get("oldest_unsynced")
    last_sync = gauges.get("last_sync") or buf.get("last_synced_at")
    return {
        "device_id": config.unit.device_id,
        "model_version": gauges.get("model_version"),
        "decided_by": gauges.get("decided_by"),
        "buffer": {**buf, "path": str(db_path)},
        "buffer_depth": buf.get("depth"),
        "oldest_unsynced_age_s": None if oldest is None else max(0.0, now - oldest),
        "last_sync": last_sync,
        "last_sync_age_s": None if last_sync is None else max(0.0, now - last_sync),
        "agent_running": health is not None
        and now - float(health.get("at", 0)) < 3 * config.health.interval_s,
        "status_file": str(status_path),
        "status_age_s": None if health is None else max(0.0, now - float(health.get("at", 0))),
        "alarms": (health or {}).get("alarms", {}),
        "components": (health or {}).get("components", {}),
        "counters": (health or {}).get("counters", {}),
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def render_table(status: dict[str, Any]) -> str:
    """A plain two-column table for a terminal."""
    rows: list[tuple[str, str]] = [
        ("device", str(status["device_id"])),
        ("agent", "running" if status["agent_running"] else "not reporting"),
        ("model version", str(status.get("model_version") or "-")),
        ("buffer depth", "-" if status["buffer_depth"] is None else str(status["buffer_depth"])),
        ("oldest unsynced", _age(status["oldest_unsynced_age_s"])),
        (
            "last sync",
            "never" if status["last_sync"] is None else _age(status["last_sync_age_s"]) + " ago",
        ),
        ("last seq", str(status["buffer"].get("seq", "-"))),
    ]
    if status["buffer"].get("error"):
        rows.append(("buffer error", str(status["buffer"]["error"])))
    for name, alarm in status["alarms"].items():
        rows.append((f"ALARM {name}", str(alarm.get("detail", ""))))
    for name, comp in status["components"].items():
        state = "ok" if comp.get("ok") else "FAULT"
        detail = f" ({comp['detail']})" if comp.get("detail") else ""
        rows.append((name, state + detail))
    for name, value in status["counters"].items():
        rows.append((name, str(value)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
