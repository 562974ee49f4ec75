"""``/v1/devices``: units, their ingest progress and their desired state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cloud import device_health, fleet
from cloud.api.deps import (
    ConnDep,
    DesiredPublisherDep,
    OperatorKey,
    ServicesDep,
    UnitKey,
    UnitOrOperatorKey,
)
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.device_health import DeviceHealthPublic
from cloud.errors import ForbiddenError
from cloud.keys import Role
from cloud.schemas import (
    ID_PATTERN,
    DeviceCreate,
    DevicePublic,
    DevicesPublic,
)
from models.wire import DEVICE_ID_PATTERN, DesiredSpec, DesiredState, HealthReport

router = APIRouter(
    prefix="/v1/devices", tags=["devices"], responses={**AUTH_ERRORS, **responses(404, 409)}
)

DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]


@router.post("", response_model=DevicePublic, status_code=201)
def create_device(body: DeviceCreate, _key: OperatorKey, services: ServicesDep) -> DevicePublic:
    """Register a unit on a registered bay."""
    with services.store.writer.begin() as conn:
        return fleet.add_device(conn, body)


@router.get("", response_model=DevicesPublic)
def read_devices(
    _key: OperatorKey,
    conn: ConnDep,
    store: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> DevicesPublic:
    """Every unit with its highest contiguous stored seq and when it was last heard."""
    data = fleet.list_devices(conn, store)
    return DevicesPublic(data=data, count=len(data))


@router.get("/{device_id}", response_model=DevicePublic)
def read_device(device_id: DeviceId, _key: OperatorKey, conn: ConnDep) -> DevicePublic:
    """One unit."""
    return fleet.get_device(conn, device_id)


@router.get("/{device_id}/desired", response_model=DesiredState)
def read_desired(device_id: DeviceId, key: UnitOrOperatorKey, conn: ConnDep) -> DesiredState:
    """What the unit should run. A unit key reads only its own."""
    if key.role is Role.UNIT and key.device_id != device_id:
        raise ForbiddenError(
            f"this key belongs to device {key.device_id!r}",
            field="device_id",
            code="device_mismatch",
        )
    return fleet.get_desired(conn, device_id)


@router.put("/{device_id}/desired", response_model=DesiredState)
def write_desired(
    device_id: DeviceId,
    body: DesiredSpec,
    _key: OperatorKey,
    services: ServicesDep,
    publisher: DesiredPublisherDep,
) -> DesiredState:
    """Set what the unit should run (model version, config overrides).

    Once stored, the state is also published retained on ``shelfsense/<id>/desired``
    when the cloud has a broker; a failed publish is logged, the PUT still succeeds.
    """
    with services.store.writer.begin() as conn:
        stored = fleet.set_desired(conn, device_id, body)
    if publisher is not None:
        publisher.publish(stored)
    return stored


@router.put("/{device_id}/health", response_model=DeviceHealthPublic)
def write_health(
    device_id: DeviceId, body: HealthReport, key: UnitKey, services: ServicesDep
) -> DeviceHealthPublic:
    """A unit reports its health: alarms, component states, counters. Its own only."""
    if key.device_id != device_id:
        raise ForbiddenError(
            f"this key belongs to device {key.device_id!r}",
            field="device_id",
            code="device_mismatch",
        )
    with services.store.writer.begin() as conn:
        return device_health.put_health(conn, device_id, body)


@router.get("/{device_id}/health", response_model=DeviceHealthPublic)
def read_health(device_id: DeviceId, _key: OperatorKey, conn: ConnDep) -> DeviceHealthPublic:
    """A unit's latest health report: which alarms are raised, which parts are down."""
    return device_health.get_health(conn, device_id)
