"""``/v1/stores``: stores, their bays and the slots of each bay (SKU and unit weight)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cloud import fleet
from cloud.api.deps import ConnDep, OperatorKey, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.schemas import (
    ID_PATTERN,
    BayCreate,
    BayPublic,
    BaysPublic,
    SlotCreate,
    SlotPublic,
    SlotsPublic,
    StoreCreate,
    StorePublic,
    StoresPublic,
)

router = APIRouter(
    prefix="/v1/stores", tags=["stores"], responses={**AUTH_ERRORS, **responses(404, 409)}
)

StoreId = Annotated[str, Path(pattern=ID_PATTERN)]
BayId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("", response_model=StorePublic, status_code=201)
def create_store(body: StoreCreate, _key: OperatorKey, services: ServicesDep) -> StorePublic:
    """Register a store."""
    with services.store.writer.begin() as conn:
        return fleet.add_store(conn, body)


@router.get("", response_model=StoresPublic)
def read_stores(_key: ReaderKey, conn: ConnDep) -> StoresPublic:
    """Every store."""
    data = fleet.list_stores(conn)
    return StoresPublic(data=data, count=len(data))


@router.post("/{store_id}/bays", response_model=BayPublic, status_code=201)
def create_bay(
    store_id: StoreId, body: BayCreate, _key: OperatorKey, services: ServicesDep
) -> BayPublic:
    """Register a bay of a store."""
    with services.store.writer.begin() as conn:
        return fleet.add_bay(conn, store_id, body)


@router.get("/{store_id}/bays", response_model=BaysPublic)
def read_bays(store_id: StoreId, _key: ReaderKey, conn: ConnDep) -> BaysPublic:
    """The bays of a store."""
    data = fleet.list_bays(conn, store_id)
    return BaysPublic(data=data, count=len(data))


@router.post("/{store_id}/bays/{bay_id}/slots", response_model=SlotPublic, status_code=201)
def create_slot(
    store_id: StoreId, bay_id: BayId, body: SlotCreate, _key: OperatorKey, services: ServicesDep
) -> SlotPublic:
    """Register a slot: which SKU sits there and what one unit of it weighs."""
    with services.store.writer.begin() as conn:
        return fleet.add_slot(conn, store_id, bay_id, body)


@router.get("/{store_id}/bays/{bay_id}/slots", response_model=SlotsPublic)
def read_slots(store_id: StoreId, bay_id: BayId, _key: ReaderKey, conn: ConnDep) -> SlotsPublic:
    """The slots of a bay."""
    data = fleet.list_slots(conn, store_id, bay_id)
    return SlotsPublic(data=data, count=len(data))
