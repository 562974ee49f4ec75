"""A unit's open setup page and its one-time PIN, as operators see it in the cloud.

A claimed unit in setup mode (``provision setup``) announces its page's address and
PIN (:class:`~models.wire_fleet.SetupAnnouncement`) and withdraws them when setup ends.
Operators read them (``GET /v1/devices/{id}/setup``, the console's unit page) to
help staff who cannot see the unit's console. An announcement past its ``until`` is
not shown: the page is closed by then whatever the unit said.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlalchemy import Connection, delete, select

from cloud.errors import NotFoundError
from cloud.fleet import get_device
from cloud.schemas import ApiModel
from cloud.store.tables import device_setup
from models.wire_fleet import SetupAnnouncement


class DeviceSetupPublic(ApiModel):
    """A unit's setup page while it is open: where, the PIN, until when."""

    device_id: str
    url: str = Field(..., description="The setup page on the store's network.")
    pin: str = Field(..., description="The one-time PIN of this setup mode.")
    until: datetime = Field(..., description="Setup mode ends by then.")
    received_at: datetime


def put_setup(
    conn: Connection, device_id: str, body: SetupAnnouncement, *, now: datetime | None = None
) -> DeviceSetupPublic:
    """Keep the unit's announcement (a new one replaces the old)."""
    get_device(conn, device_id)  # 404 for an unknown device
    row = {
        "device_id": device_id,
        "url": body.url,
        "pin": body.pin,
        "until": datetime.fromtimestamp(body.until, UTC),
        "received_at": now or datetime.now(UTC),
    }
    conn.execute(delete(device_setup).where(device_setup.c.device_id == device_id))
    conn.execute(device_setup.insert().values(row))
    return DeviceSetupPublic.model_validate(row)


def end_setup(conn: Connection, device_id: str) -> None:
    """The unit's setup mode ended: forget its page and PIN."""
    get_device(conn, device_id)
    conn.execute(delete(device_setup).where(device_setup.c.device_id == device_id))


def open_setup(
    conn: Connection, device_id: str, *, now: datetime | None = None
) -> DeviceSetupPublic | None:
    """The unit's setup page if it is open now, else None."""
    c = device_setup.c
    row = conn.execute(
        select(c.url, c.pin, c.until, c.received_at).where(c.device_id == device_id)
    ).first()
    if row is None or row.until <= (now or datetime.now(UTC)):
        return None
    return DeviceSetupPublic(device_id=device_id, **row._asdict())


def get_setup(conn: Connection, device_id: str) -> DeviceSetupPublic:
    """:func:`open_setup`, with 404 when the unit is not in setup mode."""
    found = open_setup(conn, device_id)
    if found is None:
        get_device(conn, device_id)
        raise NotFoundError(f"device {device_id!r} is not in setup mode", field="device_id")
    return found
