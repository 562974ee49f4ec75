"""Reading the fleet's state: what ``GET /v1/devices``, ``GET /v1/alarms``, the CLI and console show.

:func:`device_states` joins each unit's registration and ingest progress with what
:mod:`cloud.fleet_state` keeps (status, latest health, alarms raised, OTA report) in
one read per table; :func:`list_alarms` is the alarm history; :func:`health_history`
the unit's samples; :func:`state_counts` and :func:`alarm_counts` feed ``/metrics``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlalchemy import Connection, RowMapping, func, select

from cloud import fleet
from cloud.errors import NotFoundError
from cloud.fleet_state import MISSED_HEALTH_INTERVALS, State, offline_after_s, online_state, utc
from cloud.schemas import ApiModel, DevicePublic
from cloud.store.tables import (
    device_alarms,
    device_calibration,
    device_progress,
    device_reported,
    device_status,
    devices,
    health_samples,
    utc_naive,
)
from models.wire import Decider, HealthComponent
from models.wire_fleet import CalibrationReport

MAX_ALARMS_LISTED = 1000


class DeviceStatePublic(DevicePublic):
    """A unit with what the cloud knows of it now."""

    state: State = Field(
        ...,
        description="online/offline from its MQTT status (the broker's last will says offline); "
        f"a unit on HTTP only is offline once it missed {MISSED_HEALTH_INTERVALS} of its health "
        f"intervals (`offline_after_s` after it was last heard); unknown: never heard.",
    )
    offline_after_s: float = Field(
        ...,
        description=f"{MISSED_HEALTH_INTERVALS} × the health interval the unit stated (30 s if "
        "none): how long a unit on HTTP only may be silent before it counts as offline.",
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
    calibrated_at: datetime | None = Field(
        None, description="When the unit last reported its calibration (its clock)."
    )
    calibration: CalibrationReport | None = Field(
        None, description="Its latest calibration, per slot (None: never reported)."
    )


class DeviceStatesPublic(ApiModel):
    """Units with their state."""

    data: list[DeviceStatePublic]
    count: int = Field(description="Units on this page.")
    next: str | None = Field(
        None,
        description="The link to the next page (the same query, `after` the last unit here); "
        "None: this is the last page.",
    )


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


def last_seen(r: RowMapping) -> datetime | None:
    """When a unit (a row of :func:`state_rows`) was last heard: events, status or health."""
    seen = [t for t in (r["last_seen_at"], r["seen_at"]) if t is not None]
    return max((utc(t) for t in seen), default=None)


def row_state(r: RowMapping, now: datetime) -> State:
    """Online, offline or unknown, for a row of :func:`state_rows`."""
    return online_state(r["online"], last_seen(r), now, interval_s=r["health_interval_s"])


def state_of(r: RowMapping, alarms: list[str], now: datetime) -> DeviceStatePublic:
    """A row of :func:`state_rows` with its alarms raised now, as the API answers it."""
    seen = last_seen(r)
    return DeviceStatePublic.model_validate(
        {
            "device_id": r["device_id"],
            "store_id": r["store_id"],
            "bay_id": r["bay_id"],
            "name": r["name"],
            "created_at": r["created_at"],
            "highest_contiguous": r["highest_contiguous"] or 0,
            "last_seen_at": seen,
            "state": online_state(r["online"], seen, now, interval_s=r["health_interval_s"]),
            "offline_after_s": offline_after_s(r["health_interval_s"]),
            "status_changed_at": r["changed_at"],
            "agent_version": r["agent_version"],
            "model_version": r["model_version"],
            "decided_by": r["decided_by"],
            "buffer_depth": r["buffer_depth"],
            "oldest_unsynced_age_s": r["oldest_unsynced_age_s"],
            "last_sync_at": r["last_sync_at"],
            "health_at": r["health_at"],
            "components": r["components"] or {},
            "alarms": alarms,
            "ota_state": r["ota_state"],
            "ota_version": r["ota_version"],
            "calibrated_at": r["calibrated_at"],
            "calibration": r.get("calibration"),
        }
    )


_d, _p, _s, _r = devices.c, device_progress.c, device_status.c, device_reported.c
_c = device_calibration.c
_STATE_READ = select(
    _d.device_id,
    _d.store_id,
    _d.bay_id,
    _d.name,
    _d.created_at,
    _p.highest_contiguous,
    _p.last_seen_at,
    _s.online,
    _s.changed_at,
    _s.seen_at,
    _s.health_at,
    _s.agent_version,
    _s.model_version,
    _s.decided_by,
    _s.buffer_depth,
    _s.oldest_unsynced_age_s,
    _s.last_sync_at,
    _s.components,
    _s.health_interval_s,
    _r.state.label("ota_state"),
    _r.version.label("ota_version"),
    _c.reported_at.label("calibrated_at"),
).select_from(
    devices.outerjoin(device_progress, _p.device_id == _d.device_id)
    .outerjoin(device_status, _s.device_id == _d.device_id)
    .outerjoin(device_reported, _r.device_id == _d.device_id)
    .outerjoin(device_calibration, _c.device_id == _d.device_id)
)


def device_states(
    conn: Connection,
    *,
    store_id: str | None = None,
    device_id: str | None = None,
    now: datetime | None = None,
    calibration: bool = True,
    after: str | None = None,
    limit: int | None = None,
) -> list[DeviceStatePublic]:
    """Every unit (of one store, or the one unit, if given) with its state, by id.

    One read of the units joined with their progress, status, OTA report and
    calibration, one of the alarms raised now. ``calibration=False`` leaves out the
    calibration body (the console's fleet table does not show it); ``after`` and
    ``limit`` read one page of units, by id, after the unit ``after``.
    """
    now = now or datetime.now(UTC)
    found = state_rows(
        conn,
        store_id=store_id,
        device_id=device_id,
        calibration=calibration,
        after=after,
        limit=limit,
    )
    return [state_of(r, alarms, now) for r, alarms in found]


def state_rows(
    conn: Connection,
    *,
    store_id: str | None = None,
    device_id: str | None = None,
    calibration: bool = True,
    after: str | None = None,
    limit: int | None = None,
) -> list[tuple[RowMapping, list[str]]]:
    """The rows :func:`device_states` reads, each with the unit's alarms raised now,
    before they become API models (a page that lists a hundred of a thousand units
    builds the models of those it shows only: :func:`state_of`)."""
    if store_id is not None:
        fleet.require_store(conn, store_id)
    stmt = _STATE_READ.order_by(_d.device_id)
    if calibration:
        stmt = stmt.add_columns(_c.body.label("calibration"))
    if after is not None:
        stmt = stmt.where(_d.device_id > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    a = device_alarms.c
    raised = select(a.device_id, a.name).where(a.cleared_at.is_(None)).order_by(a.name)
    if store_id is not None:
        stmt = stmt.where(_d.store_id == store_id)
        raised = raised.join(devices, _d.device_id == a.device_id).where(_d.store_id == store_id)
    if device_id is not None:
        stmt = stmt.where(_d.device_id == device_id)
        raised = raised.where(a.device_id == device_id)
    if after is not None:
        raised = raised.where(a.device_id > after)
    alarms: dict[str, list[str]] = {}
    for r in conn.execute(raised):
        alarms.setdefault(r.device_id, []).append(r.name)
    rows = conn.execute(stmt).mappings()
    return [(r, alarms.get(r["device_id"], [])) for r in rows]


def device_state(
    conn: Connection, device_id: str, *, now: datetime | None = None
) -> DeviceStatePublic:
    """One unit with its state (404 when unknown)."""
    found = device_states(conn, device_id=device_id, now=now)
    if not found:
        raise NotFoundError(f"no device {device_id!r}", field="device_id")
    return found[0]


def state_counts(conn: Connection, now: datetime) -> dict[str, int]:
    """How many units are online, offline and unknown (for ``/metrics``)."""
    st, pr = device_status.c, device_progress.c
    stmt = select(st.online, st.seen_at, st.health_interval_s, pr.last_seen_at).select_from(
        devices.outerjoin(device_status, st.device_id == devices.c.device_id).outerjoin(
            device_progress, pr.device_id == devices.c.device_id
        )
    )
    counts = dict.fromkeys(("online", "offline", "unknown"), 0)
    for r in conn.execute(stmt):
        seen = max((utc(t) for t in (r.seen_at, r.last_seen_at) if t is not None), default=None)
        counts[online_state(r.online, seen, now, interval_s=r.health_interval_s)] += 1
    return counts


def alarm_counts(conn: Connection) -> dict[str, int]:
    """How many units raise each alarm now (for ``/metrics``)."""
    a = device_alarms.c
    rows = conn.execute(select(a.name, func.count()).where(a.cleared_at.is_(None)).group_by(a.name))
    return {name: int(n) for name, n in rows}


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
    return [(utc(r.at), r.buffer_depth, r.oldest_unsynced_age_s, r.alarms, r.down) for r in rows]
