"""``shelfsense edge watch``: a live view of the unit in the terminal (rich).

Read-only, like ``edge status``: it never talks to the agent. Each refresh reads the
agent's status file (each slot's settled weight and units, who the camera sees, sync
state, alarms; written every ``health.interval_s``) and the newest decisions in the
outbox (the moment they are committed). :func:`snapshot` gathers those values and
:func:`render` turns them into rich tables, so both are tested without a terminal.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from edge.config import Config
from edge.health import read_status
from edge.status import buffer_paths, collect

RECENT = 8


def recent_events(db_path: Path, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest decisions in the outbox, newest first, with whether the cloud has them."""
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            rows = db.execute(
                "SELECT seq, body, synced_at FROM outbox ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    out = []
    for seq, body, synced in rows:
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {}
        out.append({**(ev if isinstance(ev, dict) else {}), "seq": seq, "synced": synced})
    return out


def snapshot(config: Config, *, now: float | None = None) -> dict[str, Any]:
    """Everything the view shows, from the status file and the buffer (read-only)."""
    now = time.time() if now is None else now
    status = collect(config, now=now)
    db_path, status_path = buffer_paths(config)
    gauges = (read_status(status_path) or {}).get("gauges", {})
    grams = gauges.get("slot_grams") or {}
    units = gauges.get("stock_units") or {}
    flags = gauges.get("stock_flags") or {}
    status["slots"] = [
        {
            "slot": s.slot,
            "sku": s.sku,
            "grams": grams.get(str(s.slot)),
            "units": units.get(str(s.slot)),
            "flags": flags.get(str(s.slot)) or [],
        }
        for s in config.slots
    ]
    status["camera"] = gauges.get("camera") or {}
    status["presence"] = gauges.get("presence") or {}
    status["recent"] = recent_events(db_path)
    return status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _num(value: Any, fmt: str) -> str:
    ok = isinstance(value, int | float) and math.isfinite(value)
    return format(value, fmt) if ok else "-"


def _when(ev: dict[str, Any]) -> str:
    text = str(ev.get("wall_time", ""))
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%H:%M:%S")
    return text


def render(snap: dict[str, Any]) -> RenderableType:
    """The view: header, slots, camera, newest decisions, sync."""
    head = Text(f"unit {snap['device_id']}  ·  agent {snap['agent']}", style="bold")
    if snap.get("status_age_s") is not None:
        head.append(f"  ·  status {_age(snap['status_age_s'])} old", style="dim")
    slots = Table(title="Slots", title_justify="left", expand=False)
    for col in ("slot", "SKU", "weight", "units", "flags"):
        slots.add_column(col, justify="right" if col in ("weight", "units") else "left")
    for s in snap["slots"]:
        slots.add_row(
            str(s["slot"]),
            s["sku"],
            _num(s["grams"], ".1f") + (" g" if s["grams"] is not None else ""),
            _num(s["units"], "d"),
            ", ".join(s["flags"]),
        )
    cam = snap["camera"]
    seen = ", ".join(f"{z} ({d:.0f} s)" for z, d in sorted(snap["presence"].items()))
    camera = Text(f"camera: {cam.get('status', 'not reporting')}", style="bold")
    camera.append(f"  ·  {cam.get('frames', 0)} frames" if cam else "")
    camera.append(f"  ·  someone at: {seen}" if seen else "  ·  nobody in view")
    events = Table(title="Newest decisions", title_justify="left")
    for col in ("seq", "time", "what", "slot", "units", "grams", "cloud"):
        events.add_column(col, justify="right" if col in ("seq", "units", "grams") else "left")
    for ev in snap["recent"]:
        units = ev.get("units")
        events.add_row(
            str(ev["seq"]),
            _when(ev),
            f"{ev.get('kind', '?')}: {ev.get('label', '?')}",
            "" if ev.get("slot") is None else f"{ev['slot']} ({ev.get('sku') or ''})",
            "" if units is None else f"{units:+d}",
            _num(ev.get("grams"), "+.0f"),
            "yes" if ev["synced"] else "not yet",
        )
    if not snap["recent"]:
        events.caption = "no decisions yet"
    sync = snap["sync"]
    last = "never" if snap["last_sync"] is None else _age(snap["last_sync_age_s"]) + " ago"
    sync_line = Text(
        f"sync: {sync['events_delivered']} of {sync['events_committed']} sent, "
        f"{snap['buffer_depth'] or 0} waiting, last sync {last}"
    )
    if snap.get("sync_error"):
        sync_line.append(f"  ·  last error: {snap['sync_error']}", style="red")
    alarms = [
        Text(f"ALARM {n}: {a.get('detail', '')}", style="bold red")
        for n, a in snap["alarms"].items()
    ]
    return Group(head, slots, camera, events, sync_line, *alarms)


def watch(
    config: Config, *, refresh_s: float = 1.0, once: bool = False, console: Console | None = None
) -> int:
    """Show the view; with ``once`` print it once, else refresh until Ctrl-C."""
    from rich.live import Live

    console = console or Console()
    if once:
        console.print(render(snapshot(config)))
        return 0
    with Live(render(snapshot(config)), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(refresh_s)
                live.update(render(snapshot(config)), refresh=True)
        except KeyboardInterrupt:
            pass
    return 0
