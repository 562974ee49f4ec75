"""The latest health report of each unit: stored on PUT, read by operators.

A unit sends its :class:`~models.wire.HealthReport` (alarms, component states,
counters) every health interval; the cloud keeps the latest per device, so an
operator sees which units are down and why (``loadcell_link_down``: the load-cell
link is unplugged, silent or drowning in damaged frames).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlalchemy import Connection, select

from cloud.errors import NotFoundError
from cloud.fleet import get_device
from cloud.schemas import ApiModel
from cloud.store.tables import device_health, utc_naive
from models.wire import HealthReport


class DeviceHealthPublic(ApiModel):
    """A unit's latest health report, with the alarms raised and the parts down in it."""

    device_id: str
    reported_at: datetime = Field(..., description="When the unit made the report (its clock).")
    received_at: datetime
    alarms: list[str] = Field(..., examples=[["loadcell_link_down"]])
    down: list[str] = Field(..., description="Components not ok.", examples=[["loadcell_link"]])
    report: HealthReport


def _public(
    device_id: str, reported: datetime, received: datetime, report: HealthReport
) -> DeviceHealthPublic:
    return DeviceHealthPublic(
        device_id=device_id,
        reported_at=reported,
        received_at=received,
        alarms=sorted(report.alarms),
        down=sorted(name for name, c in report.components.items() if not c.ok),
        report=report,
    )


def put_health(
    conn: Connection, device_id: str, report: HealthReport, *, now: datetime | None = None
) -> DeviceHealthPublic:
    """Store ``report`` as the device's latest (an older report never replaces a newer)."""
    get_device(conn, device_id)  # 404 for an unknown device
    received = now or datetime.now(UTC)
    reported = datetime.fromtimestamp(report.at, UTC)
    row = {
        "device_id": device_id,
        "reported_at": utc_naive(reported),
        "received_at": utc_naive(received),
        "body": report.model_dump(mode="json"),
    }
    c = device_health.c
    have = conn.execute(select(c.reported_at).where(c.device_id == device_id)).scalar_one_or_none()
    if have is None:
        conn.execute(device_health.insert().values(row))
    elif have <= reported:
        conn.execute(device_health.update().where(c.device_id == device_id).values(row))
    else:
        return get_health(conn, device_id)
    return _public(device_id, reported, received, report)


def get_health(conn: Connection, device_id: str) -> DeviceHealthPublic:
    """The device's latest report; 404 when it has sent none."""
    c = device_health.c
    row = conn.execute(
        select(c.reported_at, c.received_at, c.body).where(c.device_id == device_id)
    ).first()
    if row is None:
        raise NotFoundError(f"device {device_id!r} has reported no health", field="device_id")
    return _public(
        device_id, row.reported_at, row.received_at, HealthReport.model_validate(row.body)
    )
