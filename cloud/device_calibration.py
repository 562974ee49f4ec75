"""The latest calibration of each unit: stored on PUT, shown to operators.

After staff calibrate a unit's slots (``provision calibrate`` or its setup page) the
unit sends its :class:`~models.wire_fleet.CalibrationReport`: per slot the tare, the scale,
the known weight, the check weight and what it read, and when. The cloud keeps the
latest per device, so the console's unit page and ``GET /v1/devices/{id}`` show which
slots are calibrated and how; a report older than the stored one changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlalchemy import Connection, select

from cloud.errors import NotFoundError
from cloud.fleet import get_device
from cloud.schemas import ApiModel
from cloud.store.tables import device_calibration, utc_naive
from models.wire_fleet import CalibrationReport


class DeviceCalibrationPublic(ApiModel):
    """A unit's latest calibration report, as the cloud received it."""

    device_id: str
    reported_at: datetime = Field(..., description="When the unit made the report (its clock).")
    received_at: datetime
    report: CalibrationReport


def put_calibration(
    conn: Connection, device_id: str, report: CalibrationReport, *, now: datetime | None = None
) -> DeviceCalibrationPublic:
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
    c = device_calibration.c
    have = conn.execute(
        select(c.reported_at).where(c.device_id == device_id).with_for_update()
    ).scalar_one_or_none()
    if have is None:
        conn.execute(device_calibration.insert().values(row))
    elif have <= reported:
        conn.execute(device_calibration.update().where(c.device_id == device_id).values(row))
    else:
        return get_calibration(conn, device_id)
    return DeviceCalibrationPublic(
        device_id=device_id, reported_at=reported, received_at=received, report=report
    )


def get_calibration(conn: Connection, device_id: str) -> DeviceCalibrationPublic:
    """The device's latest calibration; 404 when it has reported none."""
    c = device_calibration.c
    row = conn.execute(
        select(c.reported_at, c.received_at, c.body).where(c.device_id == device_id)
    ).first()
    if row is None:
        get_device(conn, device_id)  # an unknown device says so
        raise NotFoundError(
            f"device {device_id!r} has reported no calibration yet", field="device_id"
        )
    return DeviceCalibrationPublic(
        device_id=device_id,
        reported_at=row.reported_at,
        received_at=row.received_at,
        report=CalibrationReport.model_validate(row.body),
    )
