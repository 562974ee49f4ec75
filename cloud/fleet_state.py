"""What the cloud knows of each unit now: online or not, versions, outbox, health, alarms.

Units tell it on their own topics (MQTT ``…/status``, ``…/health``, ``…/reported``)
or over HTTP (``PUT /v1/devices/{id}/health``, ``POST /v1/devices/{id}/reported``):

- :func:`record_status` keeps the retained ``online``/``offline`` (the broker's last
  will says ``offline`` for a unit that vanished);
- :func:`record_health` keeps the latest :class:`~models.wire.HealthReport`, turns the
  change in its alarms into history rows (raised, cleared) and keeps a sample a minute
  (and one whenever its alarms or parts change) for the unit's health over the day;
- :func:`note_seen` marks the unit heard from.

:func:`device_states` and :func:`list_alarms` are what ``GET /v1/devices``, ``GET
/v1/alarms``, ``fleet devices list`` and the console read. The decisions are pure
(:func:`alarm_changes`, :func:`online_state`); the rest is thin SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field
from sqlalchemy import Connection, delete, insert, select, update

from cloud import device_health, fleet
from cloud.schemas import ApiModel, DevicePublic
from cloud.store.tables import (
    device_alarms,
    device_reported,
    device_status,
    devices,
    health_samples,
    utc_naive,
)
from cloud.store.tables import (
    device_health as health_table,
)
from models.wire import Decider, HealthComponent, HealthReport

HTTP_OFFLINE_AFTER_S = 120.0  # a unit with no MQTT status is offline this long after last heard
SAMPLE_EVERY_S = 60.0
SAMPLES_KEPT = timedelta(days=1)
MAX_ALARMS_LISTED = 1000

State = Literal["online", "offline", "unknown"]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _unit_time(seconds: float) -> datetime:
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
            name: (_unit_time(a.since), a.detail)
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


def online_state(
    online: bool | None,
    seen_at: datetime | None,
    now: datetime,
    *,
    offline_after_s: float = HTTP_OFFLINE_AFTER_S,
) -> State:
    """Online from the unit's MQTT status; without one (HTTP only), from when it was last heard."""
    if online is not None:
        return "online" if online else "offline"
    if seen_at is None:
        return "unknown"
    return "online" if (now - _utc(seen_at)).total_seconds() <= offline_after_s else "offline"


# writes -----------------------------------------------------------------------------------


def note_seen(conn: Connection, device_id: str, now: datetime) -> None:
    """Mark the unit heard from at ``now`` (its status row made if it has none)."""
    c = device_status.c
    done = conn.execute(
        update(device_status).where(c.device_id == device_id).values(seen_at=utc_naive(now))
    )
    if done.rowcount == 0:
        conn.execute(
            insert(device_status).values(
                device_id=device_id, online=None, changed_at=None, seen_at=utc_naive(now)
            )
        )


def record_status(conn: Connection, device_id: str, online: bool, now: datetime) -> bool:
    """Keep the unit's ``online``/``offline``; True when it changed (404 for an unknown unit)."""
    fleet.get_device(conn, device_id)
    c = device_status.c
    old = conn.execute(select(c.online).where(c.device_id == device_id)).first()
    row = {"online": online, "seen_at": utc_naive(now)}
    if old is None:
        conn.execute(
            insert(device_status).values(device_id=device_id, changed_at=utc_naive(now), **row)
        )
        return True
    changed = old.online != online
    if changed:
        row["changed_at"] = utc_naive(now)
    conn.execute(update(device_status).where(c.device_id == device_id).values(**row))
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
        and (now - _utc(last.at)).total_seconds() < SAMPLE_EVERY_S
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


def record_health(
    conn: Connection, device_id: str, report: HealthReport, now: datetime
) -> device_health.DeviceHealthPublic:
    """Keep ``report`` as the unit's latest and its alarms' history (404 for an unknown unit).

    A report older than the one stored (out of order) changes nothing but when the
    unit was last heard.
    """
    h = health_table.c
    have = conn.execute(select(h.reported_at).where(h.device_id == device_id)).scalar_one_or_none()
    stored = device_health.put_health(conn, device_id, report, now=now)
    note_seen(conn, device_id, now)
    if have is not None and _utc(have) > _unit_time(report.at):
        return stored
    changes = alarm_changes(_open_alarms(conn, device_id), report)
    _apply_alarms(conn, device_id, changes, _unit_time(report.at))
    _sample(conn, device_id, report, now)
    return stored


# reads ------------------------------------------------------------------------------------


class DeviceStatePublic(DevicePublic):
    """A unit with what the cloud knows of it now."""

    state: State = Field(
        ...,
        description="online/offline from its MQTT status (the broker's last will says offline); "
        "a unit on HTTP only is online while heard from in the last "
        f"{HTTP_OFFLINE_AFTER_S:.0f} s; unknown: never heard.",
    )
    status_changed_at: datetime | None = Field(None, description="When state last changed.")
    agent_version: str | None = None
    model_version: int | None = Field(None, description="The model deciding (None: rules).")
    decided_by: Decider | None = None
    buffer_depth: int | None = Field(None, description="Events not yet acked by the cloud.")
    oldest_unsynced_age_s: float | None = Field(
        None, description="Age of the oldest event not yet acked, when the unit reported."
    )
    last_sync_at: datetime | None = Field(None, description="The unit's last acked batch.")
    health_at: datetime | None = Field(None, description="When the latest health report came.")
    components: dict[str, HealthComponent] = Field(default_factory=dict)
    alarms: list[str] = Field(default_factory=list, description="Alarms raised now.")
    ota_state: str | None = Field(None, description="The unit's latest OTA report.")
    ota_version: int | None = None


class DeviceStatesPublic(ApiModel):
    """Units with their state."""

    data: list[DeviceStatePublic]
    count: int


class AlarmPublic(ApiModel):
    """An alarm a unit raised: when, why, and when it cleared (None: raised now)."""

    id: int
    device_id: str
    store_id: str
    name: str
    detail: str
    raised_at: datetime = Field(description="When the unit raised it (its clock).")
    cleared_at: datetime | None = Field(description="When the unit stopped reporting it.")
    active: bool


class AlarmsPublic(ApiModel):
    """Alarms, newest first."""

    data: list[AlarmPublic]
    count: int


def _state(
    d: DevicePublic,
    status: object | None,
    health: object | None,
    ota: object | None,
    alarms: list[str],
    now: datetime,
) -> DeviceStatePublic:
    online = getattr(status, "online", None)
    seen = [t for t in (d.last_seen_at, getattr(status, "seen_at", None)) if t is not None]
    last_seen = max((_utc(t) for t in seen), default=None)
    fields: dict[str, object] = {
        **d.model_dump(),
        "last_seen_at": last_seen,
        "state": online_state(online, last_seen, now),
        "status_changed_at": getattr(status, "changed_at", None),
        "alarms": alarms,
    }
    if health is not None:
        report = HealthReport.model_validate(health.body)  # type: ignore[attr-defined]
        fields |= {
            "agent_version": report.agent_version,
            "model_version": report.model_version,
            "decided_by": report.decided_by,
            "buffer_depth": report.buffer_depth,
            "oldest_unsynced_age_s": None
            if report.oldest_unsynced is None
            else max(0.0, report.at - report.oldest_unsynced),
            "last_sync_at": None if report.last_sync is None else _unit_time(report.last_sync),
            "health_at": health.received_at,  # type: ignore[attr-defined]
            "components": report.components,
        }
    if ota is not None:
        fields |= {"ota_state": ota.state, "ota_version": ota.version}  # type: ignore[attr-defined]
    return DeviceStatePublic.model_validate(fields)


def device_states(
    conn: Connection, *, store_id: str | None = None, now: datetime | None = None
) -> list[DeviceStatePublic]:
    """Every unit (of one store if given) with its state, by id."""
    now = now or datetime.now(UTC)
    if store_id is not None:
        fleet.require_store(conn, store_id)
    units = fleet.list_devices(conn, store_id)
    ids = [d.device_id for d in units]
    if not ids:
        return []

    def by_device(table: object, *cols: object) -> dict[str, object]:
        t = table.c  # type: ignore[attr-defined]
        stmt = select(t.device_id, *cols)
        if store_id is not None:
            stmt = stmt.where(t.device_id.in_(ids))
        return {r.device_id: r for r in conn.execute(stmt)}

    st = device_status.c
    status = by_device(device_status, st.online, st.changed_at, st.seen_at)
    health = by_device(health_table, health_table.c.received_at, health_table.c.body)
    ota = by_device(device_reported, device_reported.c.state, device_reported.c.version)
    a = device_alarms.c
    stmt = select(a.device_id, a.name).where(a.cleared_at.is_(None)).order_by(a.name)
    if store_id is not None:
        stmt = stmt.where(a.device_id.in_(ids))
    alarms: dict[str, list[str]] = {}
    for r in conn.execute(stmt):
        alarms.setdefault(r.device_id, []).append(r.name)
    return [
        _state(
            d,
            status.get(d.device_id),
            health.get(d.device_id),
            ota.get(d.device_id),
            alarms.get(d.device_id, []),
            now,
        )
        for d in units
    ]


def device_state(
    conn: Connection, device_id: str, *, now: datetime | None = None
) -> DeviceStatePublic:
    """One unit with its state (404 when unknown)."""
    d = fleet.get_device(conn, device_id)
    found = [
        s for s in device_states(conn, store_id=d.store_id, now=now) if s.device_id == device_id
    ]
    return found[0]


def list_alarms(
    conn: Connection,
    *,
    device_id: str | None = None,
    store_id: str | None = None,
    active: bool | None = None,
    limit: int = 100,
) -> list[AlarmPublic]:
    """Alarms, newest raised first, filtered by unit, store and whether raised now."""
    if device_id is not None:
        fleet.get_device(conn, device_id)
    if store_id is not None:
        fleet.require_store(conn, store_id)
    a = device_alarms.c
    stmt = select(
        a.id, a.device_id, devices.c.store_id, a.name, a.detail, a.raised_at, a.cleared_at
    ).select_from(device_alarms.join(devices, devices.c.device_id == a.device_id))
    if device_id is not None:
        stmt = stmt.where(a.device_id == device_id)
    if store_id is not None:
        stmt = stmt.where(devices.c.store_id == store_id)
    if active is True:
        stmt = stmt.where(a.cleared_at.is_(None))
    elif active is False:
        stmt = stmt.where(a.cleared_at.is_not(None))
    rows = conn.execute(stmt.order_by(a.raised_at.desc(), a.id.desc()).limit(limit))
    return [AlarmPublic(**r._mapping, active=r.cleared_at is None) for r in rows]


def health_history(
    conn: Connection, device_id: str, *, since: datetime
) -> list[tuple[datetime, int | None, float | None, int, int]]:
    """The unit's health samples since ``since``, oldest first: (at, depth, age, alarms, down)."""
    s = health_samples.c
    rows = conn.execute(
        select(s.at, s.buffer_depth, s.oldest_unsynced_age_s, s.alarms, s.down)
        .where(s.device_id == device_id, s.at >= utc_naive(since))
        .order_by(s.at)
    )
    return [(_utc(r.at), r.buffer_depth, r.oldest_unsynced_age_s, r.alarms, r.down) for r in rows]
