"""Registering the fleet: stores, bays, slots (SKU and unit weight), units, desired state.

Plain functions over a connection, shared by the API routes and the
``shelfsense fleet`` CLI. Each raises :class:`ConflictError` for an id that is
taken and :class:`NotFoundError` for a parent that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud.errors import ConflictError, NotFoundError
from cloud.schemas import (
    BayCreate,
    BayPublic,
    DeviceCreate,
    DevicePublic,
    SlotCreate,
    SlotPublic,
    StoreCreate,
    StorePublic,
)
from cloud.store.tables import bays, device_progress, devices, slots, stores
from models.wire_fleet import DesiredSpec, DesiredState


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection, stmt: object, what: str, field: str) -> None:
    try:
        with conn.begin_nested():
            conn.execute(stmt)  # type: ignore[call-overload]
    except IntegrityError as err:
        raise ConflictError(f"{what} already exists", field=field) from err


def require_store(conn: Connection, store_id: str) -> None:
    """:class:`NotFoundError` unless the store is registered."""
    if conn.execute(select(stores.c.store_id).where(stores.c.store_id == store_id)).first() is None:
        raise NotFoundError(f"no store {store_id!r}", field="store_id")


def add_store(conn: Connection, body: StoreCreate) -> StorePublic:
    """Register a store."""
    now = _now()
    _insert(
        conn,
        insert(stores).values(store_id=body.store_id, name=body.name, created_at=now),
        f"store {body.store_id!r}",
        "store_id",
    )
    return StorePublic(store_id=body.store_id, name=body.name, created_at=now)


def list_stores(conn: Connection) -> list[StorePublic]:
    """Every store by id."""
    rows = conn.execute(select(stores).order_by(stores.c.store_id))
    return [StorePublic.model_validate(dict(r._mapping)) for r in rows]


def add_bay(conn: Connection, store_id: str, body: BayCreate) -> BayPublic:
    """Register a bay of a store."""
    require_store(conn, store_id)
    now = _now()
    _insert(
        conn,
        insert(bays).values(store_id=store_id, bay_id=body.bay_id, name=body.name, created_at=now),
        f"bay {body.bay_id!r} of store {store_id!r}",
        "bay_id",
    )
    return BayPublic(store_id=store_id, bay_id=body.bay_id, name=body.name, created_at=now)


def list_bays(conn: Connection, store_id: str) -> list[BayPublic]:
    """The bays of a store."""
    require_store(conn, store_id)
    rows = conn.execute(select(bays).where(bays.c.store_id == store_id).order_by(bays.c.bay_id))
    return [BayPublic.model_validate(dict(r._mapping)) for r in rows]


def require_bay(conn: Connection, store_id: str, bay_id: str) -> None:
    require_store(conn, store_id)
    found = conn.execute(
        select(bays.c.bay_id).where(bays.c.store_id == store_id, bays.c.bay_id == bay_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no bay {bay_id!r} in store {store_id!r}", field="bay_id")


def add_slot(conn: Connection, store_id: str, bay_id: str, body: SlotCreate) -> SlotPublic:
    """Register a slot of a bay with its SKU and unit weight."""
    require_bay(conn, store_id, bay_id)
    now = _now()
    _insert(
        conn,
        insert(slots).values(
            store_id=store_id,
            bay_id=bay_id,
            slot=body.slot,
            sku=body.sku,
            unit_grams=body.unit_grams,
            created_at=now,
        ),
        f"slot {body.slot} of bay {bay_id!r}",
        "slot",
    )
    # /v1/stock/skus lists every registered SKU: its cached answers are stale now
    conn.exec_driver_sql("UPDATE change_counters SET value = value + 1 WHERE name = 'stock'")
    return SlotPublic(store_id=store_id, bay_id=bay_id, created_at=now, **body.model_dump())


def list_slots(conn: Connection, store_id: str, bay_id: str) -> list[SlotPublic]:
    """The slots of a bay."""
    require_bay(conn, store_id, bay_id)
    rows = conn.execute(
        select(slots)
        .where(slots.c.store_id == store_id, slots.c.bay_id == bay_id)
        .order_by(slots.c.slot)
    )
    return [SlotPublic.model_validate(dict(r._mapping)) for r in rows]


def add_device(conn: Connection, body: DeviceCreate) -> DevicePublic:
    """Register a unit on a registered bay."""
    require_bay(conn, body.store_id, body.bay_id)
    now = _now()
    _insert(
        conn,
        insert(devices).values(
            device_id=body.device_id,
            store_id=body.store_id,
            bay_id=body.bay_id,
            name=body.name,
            created_at=now,
            desired_model_version=None,
            desired_config={},
            desired_updated_at=None,
        ),
        f"device {body.device_id!r}",
        "device_id",
    )
    return DevicePublic(created_at=now, **body.model_dump())


_device_cols = (
    devices.c.device_id,
    devices.c.store_id,
    devices.c.bay_id,
    devices.c.name,
    devices.c.created_at,
    device_progress.c.highest_contiguous,
    device_progress.c.last_seen_at,
)


def _device(row: object) -> DevicePublic:
    m = dict(row._mapping)  # type: ignore[attr-defined]
    m["highest_contiguous"] = m["highest_contiguous"] or 0
    return DevicePublic.model_validate(m)


def list_devices(conn: Connection, store_id: str | None = None) -> list[DevicePublic]:
    """Every unit (of one store if given), with its ingest progress."""
    stmt = select(*_device_cols).select_from(
        devices.outerjoin(device_progress, device_progress.c.device_id == devices.c.device_id)
    )
    if store_id is not None:
        stmt = stmt.where(devices.c.store_id == store_id)
    return [_device(r) for r in conn.execute(stmt.order_by(devices.c.device_id))]


def get_device(conn: Connection, device_id: str) -> DevicePublic:
    """One unit."""
    stmt = (
        select(*_device_cols)
        .select_from(
            devices.outerjoin(device_progress, device_progress.c.device_id == devices.c.device_id)
        )
        .where(devices.c.device_id == device_id)
    )
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no device {device_id!r}", field="device_id")
    return _device(row)


def get_desired(conn: Connection, device_id: str) -> DesiredState:
    """The state a unit should be in."""
    row = conn.execute(
        select(
            devices.c.desired_model_version,
            devices.c.desired_config,
            devices.c.desired_updated_at,
            devices.c.desired_shadow_windows,
            devices.c.desired_min_shadow_agreement,
        ).where(devices.c.device_id == device_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no device {device_id!r}", field="device_id")
    return DesiredState(
        device_id=device_id,
        model_version=row.desired_model_version,
        config=row.desired_config or {},
        updated_at=row.desired_updated_at,
        shadow_windows=row.desired_shadow_windows,
        min_shadow_agreement=row.desired_min_shadow_agreement,
    )


def set_desired(conn: Connection, device_id: str, body: DesiredSpec) -> DesiredState:
    """Set the state a unit should be in."""
    done = conn.execute(
        update(devices)
        .where(devices.c.device_id == device_id)
        .values(
            desired_model_version=body.model_version,
            desired_config=body.config,
            desired_updated_at=_now(),
            desired_shadow_windows=body.shadow_windows,
            desired_min_shadow_agreement=body.min_shadow_agreement,
        )
    )
    if done.rowcount == 0:
        raise NotFoundError(f"no device {device_id!r}", field="device_id")
    return get_desired(conn, device_id)
