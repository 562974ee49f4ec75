"""What the cloud knows of each unit now: online or not, versions, outbox, health, alarms.

Units tell it on their own topics (MQTT ``…/status``, ``…/health``, ``…/reported``)
or over HTTP (``PUT /v1/devices/{id}/health``, ``POST /v1/devices/{id}/reported``):

- :func:`record_status` keeps the retained ``online``/``offline`` (the broker's last
  will says ``offline`` for a unit that vanished);
- :func:`record_health` keeps the latest :class:`~models.wire.HealthReport`, turns the
  change in its alarms into history rows (raised, cleared) and keeps a sample a minute
  (and one whenever its alarms or parts change) for the unit's health over the day;
- :func:`note_seen` marks the unit heard from.

:mod:`cloud.fleet_views` reads it back. The decisions are pure
(:func:`alarm_changes`, :func:`online_state`); the rest is thin SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloud import device_health, fleet
from cloud.store.tables import device_alarms, device_status, health_samples, utc_naive
from cloud.store.tables import device_health as health_table
from models.wire import HealthReport

MISSED_HEALTH_INTERVALS = 4  # a unit with no MQTT status is offline after missing this many
DEFAULT_HEALTH_INTERVAL_S = 30.0  # the unit's default ``health.interval_s``, when it states none
SAMPLE_EVERY_S = 60.0
SAMPLES_KEPT = timedelta(days=1)

State = Literal["online", "offline", "unknown"]


def utc(value: datetime) -> datetime:
    """``value`` with UTC as its zone when it has none (as naive columns read back)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unit_time(seconds: float) -> datetime:
    """A time on the unit's wall clock (Unix seconds) as a UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


# pure decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmChanges:
    """What one health report changes in a unit's alarms."""

    raised: dict[str, tuple[datetime, str]]  # name -> (since, detail)
    cleared: set[str]
    detail: dict[str, str]  # still raised, with a new detail


def alarm_changes(open_alarms: dict[str, str], report: HealthReport) -> AlarmChanges:
    """Compare the alarms open in the store (name -> detail) with those ``report`` raises.

    An alarm in the report and not open is raised (since the unit's ``since``); one
    open and absent from the report has cleared.
    """
    now_raised = report.alarms
    return AlarmChanges(
        raised={
            name: (unit_time(a.since), a.detail)
            for name, a in now_raised.items()
            if name not in open_alarms
        },
        cleared=set(open_alarms) - set(now_raised),
        detail={
            name: a.detail
            for name, a in now_raised.items()
            if name in open_alarms and open_alarms[name] != a.detail
        },
    )


def offline_after_s(interval_s: float | None) -> float:
    """How long after it was last heard a unit on HTTP only turns offline: after
    ``MISSED_HEALTH_INTERVALS`` of its stated health interval (the default one if it stated none)."""
    interval = interval_s if interval_s and interval_s > 0 else DEFAULT_HEALTH_INTERVAL_S
    return MISSED_HEALTH_INTERVALS * interval


def online_state(
    online: bool | None,
    seen_at: datetime | None,
    now: datetime,
    *,
    interval_s: float | None = None,
) -> State:
    """Online from the unit's MQTT status; without one (HTTP only), offline once it missed
    ``MISSED_HEALTH_INTERVALS`` health intervals since it was last heard (read at read time)."""
    if online is not None:
        return "online" if online else "offline"
    if seen_at is None:
        return "unknown"
    silent = (now - utc(seen_at)).total_seconds()
    return "online" if silent <= offline_after_s(interval_s) else "offline"


# writes -----------------------------------------------------------------------------------


def _status_row(conn: Connection, device_id: str) -> bool | None:
    """Make the unit's status row if it has none (two workers may race to), lock it, and
    answer its ``online``."""
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(device_status)
    conn.execute(
        ins.values(
            device_id=device_id, online=None, changed_at=None, seen_at=None
        ).on_conflict_do_nothing(index_elements=["device_id"])
    )
    c = device_status.c
    online: bool | None = conn.execute(
        select(c.online).where(c.device_id == device_id).with_for_update()
    ).scalar_one()
    return online


def note_seen(conn: Connection, device_id: str, now: datetime) -> None:
    """Mark the unit heard from at ``now`` (its status row made, and locked, first)."""
    _status_row(conn, device_id)
    conn.execute(
        update(device_status)
        .where(device_status.c.device_id == device_id)
        .values(seen_at=utc_naive(now))
    )


def record_status(
    conn: Connection, device_id: str, online: bool, now: datetime, *, retained: bool = False
) -> bool:
    """Keep the unit's ``online``/``offline``; True when it changed (404 for an unknown unit).

    A ``retained`` status is the broker's copy handed to a worker that just subscribed:
    it says what the unit is, not that it was heard now (nor when it changed).
    """
    fleet.get_device(conn, device_id)
    old = _status_row(conn, device_id)
    when = None if retained else utc_naive(now)
    row: dict[str, object] = {"online": online}
    if not retained:
        row["seen_at"] = when
    changed = old != online
    if changed:
        row["changed_at"] = when
    conn.execute(update(device_status).where(device_status.c.device_id == device_id).values(**row))
    return changed


def _open_alarms(conn: Connection, device_id: str) -> dict[str, str]:
    a = device_alarms.c
    rows = conn.execute(
        select(a.name, a.detail).where(a.device_id == device_id, a.cleared_at.is_(None))
    )
    return {r.name: r.detail for r in rows}


def _apply_alarms(
    conn: Connection, device_id: str, changes: AlarmChanges, cleared_at: datetime
) -> None:
    a = device_alarms.c
    for name, (since, detail) in sorted(changes.raised.items()):
        conn.execute(
            insert(device_alarms).values(
                device_id=device_id,
                name=name,
                detail=detail,
                raised_at=utc_naive(since),
                cleared_at=None,
            )
        )
    open_rows = (a.device_id == device_id, a.cleared_at.is_(None))
    if changes.cleared:
        conn.execute(
            update(device_alarms)
            .where(*open_rows, a.name.in_(sorted(changes.cleared)))
            .values(cleared_at=utc_naive(cleared_at))
        )
    for name, detail in changes.detail.items():
        conn.execute(update(device_alarms).where(*open_rows, a.name == name).values(detail=detail))


def _sample(conn: Connection, device_id: str, report: HealthReport, now: datetime) -> None:
    s = health_samples.c
    alarms = len(report.alarms)
    down = sum(1 for c in report.components.values() if not c.ok)
    last = conn.execute(
        select(s.at, s.alarms, s.down)
        .where(s.device_id == device_id)
        .order_by(s.at.desc())
        .limit(1)
    ).first()
    if (
        last is not None
        and (now - utc(last.at)).total_seconds() < SAMPLE_EVERY_S
        and (last.alarms, last.down) == (alarms, down)
    ):
        return  # a sample a minute, and one whenever alarms or parts change
    age = None if report.oldest_unsynced is None else max(0.0, report.at - report.oldest_unsynced)
    conn.execute(
        insert(health_samples).values(
            device_id=device_id,
            at=utc_naive(now),
            buffer_depth=report.buffer_depth,
            oldest_unsynced_age_s=age,
            alarms=alarms,
            down=down,
        )
    )
    conn.execute(
        delete(health_samples).where(s.device_id == device_id, s.at < utc_naive(now - SAMPLES_KEPT))
    )


def _figures(report: HealthReport, now: datetime) -> dict[str, object]:
    """What the fleet view shows of a health report (kept on the unit's status row)."""
    age = None if report.oldest_unsynced is None else max(0.0, report.at - report.oldest_unsynced)
    return {
        "health_at": utc_naive(now),
        "agent_version": report.agent_version,
        "model_version": report.model_version,
        "decided_by": report.decided_by,
        "buffer_depth": report.buffer_depth,
        "oldest_unsynced_age_s": age,
        "last_sync_at": None
        if report.last_sync is None
        else utc_naive(unit_time(report.last_sync)),
        "components": {k: c.model_dump() for k, c in report.components.items()},
        "health_interval_s": report.interval_s,
    }


def record_health(
    conn: Connection, device_id: str, report: HealthReport, now: datetime
) -> device_health.DeviceHealthPublic:
    """Keep ``report`` as the unit's latest and its alarms' history (404 for an unknown unit).

    A report older than the one stored (out of order) changes nothing but when the
    unit was last heard. Marking it heard first locks its status row (PostgreSQL), so
    two workers with reports of one unit apply them one after the other.
    """
    fleet.get_device(conn, device_id)  # 404 for an unknown device, before any write
    note_seen(conn, device_id, now)
    h = health_table.c
    have = conn.execute(select(h.reported_at).where(h.device_id == device_id)).scalar_one_or_none()
    stored = device_health.put_health(conn, device_id, report, now=now)
    if have is not None and utc(have) > unit_time(report.at):
        return stored
    conn.execute(
        update(device_status)
        .where(device_status.c.device_id == device_id)
        .values(**_figures(report, now))
    )
    changes = alarm_changes(_open_alarms(conn, device_id), report)
    _apply_alarms(conn, device_id, changes, unit_time(report.at))
    _sample(conn, device_id, report, now)
    return stored
