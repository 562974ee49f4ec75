"""``shelfsense edge status``: what the unit is doing, read from disk only.

It reads the status file the health worker writes atomically and the buffer database
read-only, through :func:`edge.buffer.rows.read_view`; it never talks to the running agent, so it works when the agent
is stuck or stopped. Whether the agent runs comes from the process named in the file
(its pid alive, and no clean stop written after); the file's age says whether it
still reports. Sync counters are summed up as lines a person can read during an
outage: events committed, delivered, waiting, and tries that failed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.buffer import rows
from edge.config import Config
from edge.health import read_status


def buffer_paths(config: Config) -> tuple[Path, Path]:
    """The buffer database and status file of a unit config."""
    data = Path(config.unit.data_dir)
    return data / config.buffer.file, data / config.health.status_file


def read_buffer(path: Path) -> dict[str, Any]:
    """Depth, oldest unsent row, last sync and last seq from the database, read-only."""
    return rows.read_view(path)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie (someone else's counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal check is all there is
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def agent_state(
    health: dict[str, Any] | None,
    *,
    now: float,
    interval_s: float,
    alive: Callable[[int], bool] = pid_alive,
) -> tuple[bool, str]:
    """Whether the agent runs, and a phrase for people, from its last status file."""
    if health is None:
        return False, "not reporting (no status file: never started here)"
    at = float(health.get("at", 0))
    gauges = health.get("gauges", {})
    stopped = gauges.get("stopped_at")
    pid = health.get("pid")
    if stopped is not None:
        return False, f"stopped {_age(max(0.0, now - float(stopped)))} ago"
    if not isinstance(pid, int) or not alive(pid):
        return False, f"not running (ended without a clean stop; last report {_age(now - at)} ago)"
    if now - at > 3 * interval_s:
        return True, f"running (pid {pid}) but not reporting for {_age(now - at)}"
    return True, f"running (pid {pid})"


def sync_summary(counters: dict[str, int], depth: int | None) -> dict[str, Any]:
    """The sync counters as figures that read alone: delivered, waiting, tries and failures."""
    return {
        "events_committed": counters.get("events_committed", 0),
        "events_delivered": counters.get("events_synced", 0),
        "events_waiting": depth,
        "batches_tried": counters.get("batches_sent", 0),
        "tries_failed": counters.get("sync_failures", 0),
        "events_refused": counters.get("events_rejected", 0),
    }


def collect(config: Config, *, now: float | None = None) -> dict[str, Any]:
    """Everything ``edge status`` shows, as a JSON-ready dict."""
    now = time.time() if now is None else now
    db_path, status_path = buffer_paths(config)
    buf = read_buffer(db_path)
    health = read_status(status_path)
    running, agent = agent_state(health, now=now, interval_s=config.health.interval_s)
    gauges = (health or {}).get("gauges", {})
    counters = (health or {}).get("counters", {})
    oldest = buf.get("oldest_unsynced")
    last_sync = gauges.get("last_sync") or buf.get("last_synced_at")
    return {
        "device_id": config.unit.device_id,
        "model_version": gauges.get("model_version"),
        "decided_by": gauges.get("decided_by"),
        "model_update": gauges.get("ota_report"),
        "buffer": {**buf, "path": str(db_path)},
        "buffer_depth": buf.get("depth"),
        "oldest_unsynced_age_s": None if oldest is None else max(0.0, now - oldest),
        "last_sync": last_sync,
        "last_sync_age_s": None if last_sync is None else max(0.0, now - last_sync),
        "agent_running": running,
        "agent": agent,
        "agent_pid": (health or {}).get("pid"),
        "sync": sync_summary(counters, buf.get("depth")),
        "sync_error": gauges.get("sync_error"),
        "status_file": str(status_path),
        "status_age_s": None if health is None else max(0.0, now - float(health.get("at", 0))),
        "alarms": (health or {}).get("alarms", {}),
        "components": (health or {}).get("components", {}),
        "counters": counters,
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


def _update(report: dict[str, Any] | None) -> str:
    """The last OTA report: ``failed v3 (needs agent 9.0.0 …)``, or ``-``."""
    if not report:
        return "-"
    text = f"{report.get('state')} v{report.get('version')}"
    if report.get("previous_version") is not None:
        text += f", previous v{report['previous_version']}"
    return text + (f" ({report['reason']})" if report.get("reason") else "")


def render_table(status: dict[str, Any]) -> str:
    """A plain two-column table for a terminal."""
    rows: list[tuple[str, str]] = [
        ("device", str(status["device_id"])),
        ("agent", status["agent"]),
        ("decided by", str(status.get("decided_by") or "-")),
        ("model version", str(status.get("model_version") or "-")),
        ("model update", _update(status.get("model_update"))),
        ("buffer depth", "-" if status["buffer_depth"] is None else str(status["buffer_depth"])),
        ("oldest unsynced", _age(status["oldest_unsynced_age_s"])),
        (
            "last sync",
            "never" if status["last_sync"] is None else _age(status["last_sync_age_s"]) + " ago",
        ),
        ("last seq", str(status["buffer"].get("seq", "-"))),
    ]
    sync = status["sync"]
    rows += [
        ("events committed", str(sync["events_committed"])),
        ("events delivered", f"{sync['events_delivered']} (acknowledged by the cloud)"),
        ("events waiting", "-" if sync["events_waiting"] is None else str(sync["events_waiting"])),
        ("sync tries", f"{sync['batches_tried']} batches, {sync['tries_failed']} failed"),
    ]
    if sync["events_refused"]:
        rows.append(("events refused", f"{sync['events_refused']} (quarantined, not resent)"))
    if status.get("sync_error"):
        rows.append(("last sync error", str(status["sync_error"])))
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
