"""Tenancy: an event belongs to the registration of the unit that sent it, nowhere else.

Workflow: :func:`registrations` reads, in one round trip per table, the store, bay,
registered slots and key state of the devices in a batch; :func:`bind` (pure) then
checks one event against its device's :class:`Registration` and returns it with what
the registration fills in (the slot's SKU when the unit sent none), or raises a
:class:`cloud.errors.CloudError` with a stable code naming the field at fault:

- ``unknown_device``: no such device is registered (register it before its unit sends);
- ``revoked_device``: the device has no live unit key (its key was revoked);
- ``wrong_store`` / ``wrong_bay``: the event names a store or bay other than the unit's;
- ``unknown_slot``: the bay has registered slots and this is not one of them;
- ``wrong_sku``: the event names a SKU other than the one registered on its slot.

Every refusal is a :class:`ForbiddenError` (HTTP 403): the unit may not write there.
A unit whose config disagrees with its registration keeps its events (over HTTP its
batches wait, refused, until the config or the registration is fixed); nothing it
sends reaches another bay. So a unit key, or a unit's broker login, can only ever
touch its own bay's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from cloud.errors import ForbiddenError
from cloud.keys import Role
from cloud.store.tables import api_keys, devices, slots
from models.wire import ShelfEvent


@dataclass(frozen=True)
class Registration:
    """Where a device is registered and whether it may send: the truth its events are held to."""

    device_id: str
    store_id: str
    bay_id: str
    slots: Mapping[int, str] = field(default_factory=dict)  # slot -> SKU
    live_key: bool = True


def registrations(conn: Connection, device_ids: Iterable[str]) -> dict[str, Registration]:
    """The registrations of ``device_ids`` that exist (absent ids are not registered)."""
    wanted = sorted(set(device_ids))
    if not wanted:
        return {}
    found = conn.execute(
        select(devices.c.device_id, devices.c.store_id, devices.c.bay_id).where(
            devices.c.device_id.in_(wanted)
        )
    ).all()
    if not found:
        return {}
    live = {
        d
        for (d,) in conn.execute(
            select(api_keys.c.device_id)
            .where(
                api_keys.c.device_id.in_(wanted),
                api_keys.c.role == Role.UNIT.value,
                api_keys.c.revoked_at.is_(None),
            )
            .distinct()
        )
    }
    bays = {(s, b) for _, s, b in found}
    slot_map: dict[tuple[str, str], dict[int, str]] = {bay: {} for bay in bays}
    for store_id, bay_id, slot, sku in conn.execute(
        select(slots.c.store_id, slots.c.bay_id, slots.c.slot, slots.c.sku).where(
            slots.c.store_id.in_(sorted({s for s, _ in bays})),
            slots.c.bay_id.in_(sorted({b for _, b in bays})),
        )
    ):
        if (store_id, bay_id) in slot_map:
            slot_map[(store_id, bay_id)][int(slot)] = sku
    return {d: Registration(d, s, b, slot_map[(s, b)], live_key=d in live) for d, s, b in found}


def bind(ev: ShelfEvent, reg: Registration | None, *, where: str) -> ShelfEvent:
    """``ev`` held to its device's registration (SKU filled from the slot), or refused."""
    if reg is None:
        raise ForbiddenError(
            f"device {ev.device_id!r} is not registered; register it before its unit sends",
            field=f"{where}.device_id",
            code="unknown_device",
        )
    if not reg.live_key:
        raise ForbiddenError(
            f"device {ev.device_id!r} has no live unit key (revoked)",
            field=f"{where}.device_id",
            code="revoked_device",
        )
    if ev.store != reg.store_id:
        raise ForbiddenError(
            f"device {ev.device_id!r} is registered in store {reg.store_id!r}, not {ev.store!r}",
            field=f"{where}.store",
            code="wrong_store",
        )
    if ev.bay != reg.bay_id:
        raise ForbiddenError(
            f"device {ev.device_id!r} is registered on bay {reg.bay_id!r}, not {ev.bay!r}",
            field=f"{where}.bay",
            code="wrong_bay",
        )
    if ev.slot is None or not reg.slots:
        return ev
    registered = reg.slots.get(ev.slot)
    if registered is None:
        raise ForbiddenError(
            f"bay {reg.bay_id!r} has no slot {ev.slot} registered",
            field=f"{where}.slot",
            code="unknown_slot",
        )
    if ev.sku is None:
        return ev.model_copy(update={"sku": registered})
    if ev.sku != registered:
        raise ForbiddenError(
            f"slot {ev.slot} of bay {reg.bay_id!r} holds {registered!r}, not {ev.sku!r}",
            field=f"{where}.sku",
            code="wrong_sku",
        )
    return ev
