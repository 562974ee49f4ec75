"""``/v1/devices``: units, their state and desired state; ``/v1/alarms``: what they raised.

A unit key writes only its own device's health, calibration and setup page; operators
read the fleet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from cloud import device_calibration, device_health, device_setup, fleet, fleet_state, fleet_views
from cloud.api.deps import (
    ConnDep,
    DesiredPublisherDep,
    OperatorKey,
    ServicesDep,
    UnitKey,
    UnitOrOperatorKey,
)
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.api.routes.ingest import BoundedBodyRoute
from cloud.device_calibration import DeviceCalibrationPublic
from cloud.device_health import DeviceHealthPublic
from cloud.device_setup import DeviceSetupPublic
from cloud.errors import ForbiddenError
from cloud.fleet_views import AlarmsPublic, DeviceStatePublic, DeviceStatesPublic
from cloud.keys import Role
from cloud.schemas import (
    ID_PATTERN,
    DeviceCreate,
    DevicePublic,
)
from models.wire import DEVICE_ID_PATTERN, HealthReport
from models.wire_fleet import CalibrationReport, DesiredSpec, DesiredState, SetupAnnouncement

router = APIRouter(
    prefix="/v1/devices",
    tags=["devices"],
    responses={**AUTH_ERRORS, **responses(404, 409)},
    route_class=BoundedBodyRoute,
)
alarms_router = APIRouter(
    prefix="/v1/alarms", tags=["devices"], responses={**AUTH_ERRORS, **responses(404)}
)

DEVICES_PAGE = 200  # units a page of GET /v1/devices unless the caller asks for more
MAX_DEVICES_PAGE = 1000
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]


@router.post("", response_model=DevicePublic, status_code=201)
def create_device(body: DeviceCreate, _key: OperatorKey, services: ServicesDep) -> DevicePublic:
    """Register a unit on a registered bay."""
    with services.store.writer.begin() as conn:
        return fleet.add_device(conn, body)


@router.get("", response_model=DeviceStatesPublic)
def read_devices(
    _key: OperatorKey,
    conn: ConnDep,
    store: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    after: Annotated[
        str | None, Query(pattern=DEVICE_ID_PATTERN, description="Units after this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DEVICES_PAGE, description="Units a page.")] = (
        DEVICES_PAGE
    ),
) -> Response:
    """Units by id with their state: online, versions, outbox, last sync, health, alarms raised.

    One page of ``limit`` units; ``next`` links to the next page while there is one.
    """
    data = fleet_views.device_states(conn, store_id=store, after=after, limit=limit + 1)
    nxt = None
    if len(data) > limit:
        data = data[:limit]
        query = {"after": data[-1].device_id, "limit": str(limit)}
        if store is not None:
            query["store"] = store
        nxt = "/v1/devices?" + urlencode(query)
    # serialized here in one step: FastAPI's validate-then-encode of the answer took as
    # long as reading a fleet of 1,000 units (see bench_console)
    body = DeviceStatesPublic(data=data, count=len(data), next=nxt).model_dump_json()
    return Response(body, media_type="application/json")


@router.get("/{device_id}", response_model=DeviceStatePublic)
def read_device(device_id: DeviceId, _key: OperatorKey, conn: ConnDep) -> DeviceStatePublic:
    """One unit with its state."""
    return fleet_views.device_state(conn, device_id)


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
        return fleet_state.record_health(conn, device_id, body, datetime.now(UTC))


@router.get("/{device_id}/health", response_model=DeviceHealthPublic)
def read_health(device_id: DeviceId, _key: OperatorKey, conn: ConnDep) -> DeviceHealthPublic:
    """A unit's latest health report: which alarms are raised, which parts are down."""
    return device_health.get_health(conn, device_id)


@router.put("/{device_id}/calibration", response_model=DeviceCalibrationPublic)
def write_calibration(
    device_id: DeviceId, body: CalibrationReport, key: UnitKey, services: ServicesDep
) -> DeviceCalibrationPublic:
    """A unit reports its calibration (every slot: tare, scale, weights used). Its own only."""
    _own(key, device_id)
    with services.store.writer.begin() as conn:
        return device_calibration.put_calibration(conn, device_id, body)


@router.get("/{device_id}/calibration", response_model=DeviceCalibrationPublic)
def read_calibration(
    device_id: DeviceId, _key: OperatorKey, conn: ConnDep
) -> DeviceCalibrationPublic:
    """A unit's latest calibration: per slot its zero, scale, known and check weights."""
    return device_calibration.get_calibration(conn, device_id)


def _own(key: UnitKey, device_id: str) -> None:
    if key.device_id != device_id:
        raise ForbiddenError(
            f"this key belongs to device {key.device_id!r}",
            field="device_id",
            code="device_mismatch",
        )


@router.put("/{device_id}/setup", response_model=DeviceSetupPublic)
def write_setup(
    device_id: DeviceId, body: SetupAnnouncement, key: UnitKey, services: ServicesDep
) -> DeviceSetupPublic:
    """A unit in setup mode announces its setup page and one-time PIN. Its own only."""
    _own(key, device_id)
    with services.store.writer.begin() as conn:
        return device_setup.put_setup(conn, device_id, body)


@router.delete("/{device_id}/setup", status_code=204)
def end_setup(device_id: DeviceId, key: UnitKey, services: ServicesDep) -> None:
    """The unit's setup mode ended: its page and PIN are no longer shown. Its own only."""
    _own(key, device_id)
    with services.store.writer.begin() as conn:
        device_setup.end_setup(conn, device_id)


@router.get("/{device_id}/setup", response_model=DeviceSetupPublic)
def read_setup(device_id: DeviceId, _key: OperatorKey, conn: ConnDep) -> DeviceSetupPublic:
    """A unit's open setup page and its PIN, to read out to store staff; 404 when closed."""
    return device_setup.get_setup(conn, device_id)


@alarms_router.get("", response_model=AlarmsPublic)
def read_alarms(
    _key: OperatorKey,
    conn: ConnDep,
    device: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
    store: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    active: Annotated[bool | None, Query(description="true: raised now; false: cleared")] = None,
    limit: Annotated[int, Query(ge=1, le=fleet_views.MAX_ALARMS_LISTED)] = 100,
) -> AlarmsPublic:
    """Alarms units raised, newest first, with when each cleared."""
    data = fleet_views.list_alarms(
        conn, device_id=device, store_id=store, active=active, limit=limit
    )
    return AlarmsPublic(data=data, count=len(data))
