"""``/v1/rollouts`` (operator), ``/v1/devices/{id}/reported`` (a unit's OTA report) and groups.

Every change runs a rollout tick at once and publishes the desired states it set
when the cloud has a broker; the background thread (``rollout_tick_s``) does the rest.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path

from cloud import fleet_state, rollouts
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
from cloud.errors import ForbiddenError
from cloud.keys import ApiKey, Role
from cloud.ota_schemas import (
    GroupTag,
    ReportedCreate,
    ReportedPublic,
    RolloutCreate,
    RolloutPublic,
    RolloutsPublic,
)
from models.wire import DEVICE_ID_PATTERN
from models.wire_fleet import DesiredState

router = APIRouter(
    prefix="/v1/rollouts", tags=["rollouts"], responses={**AUTH_ERRORS, **responses(404, 409)}
)
device_router = APIRouter(
    prefix="/v1/devices",
    tags=["rollouts"],
    responses={**AUTH_ERRORS, **responses(404)},
    route_class=BoundedBodyRoute,
)
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]
RolloutId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def publish(publisher: DesiredPublisherDep, changed: list[DesiredState]) -> None:
    """Send changed desired states to the units (when the cloud has a broker)."""
    if publisher is not None:
        for state in changed:
            publisher.publish(state)


def _own(key: ApiKey, device_id: str) -> None:
    if key.role is Role.UNIT and key.device_id != device_id:
        raise ForbiddenError(
            f"this key belongs to device {key.device_id!r}",
            field="device_id",
            code="device_mismatch",
        )


@router.post("", response_model=RolloutPublic, status_code=201)
def create_rollout(
    body: RolloutCreate,
    _key: OperatorKey,
    services: ServicesDep,
    publisher: DesiredPublisherDep,
) -> RolloutPublic:
    """Start a rollout; the canary units get the version at once."""
    with services.store.writer.begin() as conn:
        rollout_id = rollouts.create_rollout(conn, body)
    publish(publisher, rollouts.tick(services.store))
    with services.store.engine.connect() as conn:
        return rollouts.get_rollout(conn, rollout_id)


@router.get("", response_model=RolloutsPublic)
def read_rollouts(_key: OperatorKey, conn: ConnDep) -> RolloutsPublic:
    """Every rollout, newest first, with its units' states per phase."""
    data = rollouts.list_rollouts(conn)
    return RolloutsPublic(data=data, count=len(data))


@router.get("/{rollout_id}", response_model=RolloutPublic)
def read_rollout(rollout_id: RolloutId, _key: OperatorKey, conn: ConnDep) -> RolloutPublic:
    """One rollout."""
    return rollouts.get_rollout(conn, rollout_id)


@router.post("/{rollout_id}/{action}", response_model=RolloutPublic)
def act(
    rollout_id: RolloutId,
    action: Literal["pause", "resume", "halt", "rollback", "tick"],
    _key: OperatorKey,
    services: ServicesDep,
    publisher: DesiredPublisherDep,
) -> RolloutPublic:
    """Pause, resume, halt or roll back (halt and rollback put touched units back); or tick now."""
    if action == "tick":
        changed = rollouts.tick(services.store)
    else:
        changed = rollouts.command(services.store, rollout_id, action)
    publish(publisher, changed)
    with services.store.engine.connect() as conn:
        return rollouts.get_rollout(conn, rollout_id)


@device_router.post("/{device_id}/reported", response_model=ReportedPublic)
def post_reported(
    device_id: DeviceId,
    body: ReportedCreate,
    key: UnitKey,
    services: ServicesDep,
    publisher: DesiredPublisherDep,
) -> ReportedPublic:
    """A unit reports its model update (own device only); rollouts advance on it."""
    _own(key, device_id)
    with services.store.writer.begin() as conn:
        stored = rollouts.record_report(conn, device_id, body)
        fleet_state.note_seen(conn, device_id, stored.updated_at)
    publish(publisher, rollouts.tick(services.store))
    return stored


@device_router.get("/{device_id}/reported", response_model=ReportedPublic)
def read_reported(device_id: DeviceId, key: UnitOrOperatorKey, conn: ConnDep) -> ReportedPublic:
    """A unit's latest OTA report."""
    _own(key, device_id)
    return rollouts.get_report(conn, device_id)


@device_router.post("/{device_id}/groups", response_model=list[str])
def tag_device(
    device_id: DeviceId, body: GroupTag, _key: OperatorKey, services: ServicesDep
) -> list[str]:
    """Put a unit in a group; answers its groups."""
    with services.store.writer.begin() as conn:
        return rollouts.tag_device(conn, device_id, body)
