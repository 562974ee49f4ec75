"""The fleet as a terminal table: what ``shelfsense fleet devices list`` prints. Pure text.

One row per unit: where it is, online or not and since when it was heard, which
agent and model, how far behind (outbox depth, oldest unsynced event, last sync),
which parts are down and which alarms are raised. Every value a unit sent has its
control characters replaced, so no report can rewrite the operator's terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from cloud.fleet_views import AlarmPublic, DeviceStatePublic

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_CELL = 48


def age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; ``-`` for nothing."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            return f"{int(s // size)}{unit}"
    return f"{int(s)}s"


def _since(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return age((now - when).total_seconds()) + " ago"


def _cell(value: object) -> str:
    text = "-" if value is None or value == "" or value == [] else str(value)
    text = _CONTROL.sub("?", text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    cells = [list(header), *([_cell(v) for v in r] for r in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


DEVICE_HEADER = (
    "UNIT",
    "STORE/BAY",
    "STATE",
    "LAST SEEN",
    "AGENT",
    "MODEL",
    "OUTBOX",
    "OLDEST",
    "LAST SYNC",
    "DOWN",
    "ALARMS",
)


def _model(d: DeviceStatePublic) -> str:
    if d.model_version is not None:
        return f"v{d.model_version}"
    return d.decided_by or "-"


def device_table(devices: Sequence[DeviceStatePublic], now: datetime) -> str:
    """The fleet, one unit a row."""
    rows = [
        (
            d.device_id,
            f"{d.store_id}/{d.bay_id}",
            d.state,
            _since(d.last_seen_at, now),
            d.agent_version,
            _model(d),
            d.buffer_depth,
            age(d.oldest_unsynced_age_s) if d.oldest_unsynced_age_s is not None else None,
            _since(d.last_sync_at, now),
            ",".join(sorted(k for k, c in d.components.items() if not c.ok)),
            ",".join(d.alarms),
        )
        for d in devices
    ]
    online = sum(1 for d in devices if d.state == "online")
    alarmed = sum(1 for d in devices if d.alarms)
    foot = f"{len(devices)} units: {online} online, {len(devices) - online} not; {alarmed} alarming"
    return table(DEVICE_HEADER, rows) + "\n" + foot


ALARM_HEADER = ("UNIT", "STORE", "ALARM", "RAISED", "CLEARED", "DETAIL")


def alarm_table(alarms: Sequence[AlarmPublic], now: datetime) -> str:
    """Alarms, one a row, newest first as given."""
    rows = [
        (
            a.device_id,
            a.store_id,
            a.name,
            _since(a.raised_at, now),
            "raised now" if a.cleared_at is None else _since(a.cleared_at, now),
            a.detail,
        )
        for a in alarms
    ]
    return table(ALARM_HEADER, rows) + f"\n{len(alarms)} alarms"
