"""``/v1/stock``: units on the shelf now, per slot or per store and SKU, with ETags.

Answers are cached per query until the next ingest that changes current stock
(the ``stock`` change counter), so polling stock costs one tiny read.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cloud.api.deps import ConnDep, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS
from cloud.api.etag import NOT_MODIFIED
from cloud.api.params import BayQ, SkuQ, StoreQ
from cloud.ingest import stock_version
from cloud.reads import stock_skus, stock_slots
from cloud.schemas import StockPublic, StockSkusPublic

router = APIRouter(prefix="/v1/stock", tags=["stock"], responses={**AUTH_ERRORS, **NOT_MODIFIED})


@router.get("", response_model=StockPublic)
def get_stock(
    request: Request,
    _key: ReaderKey,
    conn: ConnDep,
    services: ServicesDep,
    store: StoreQ = None,
    bay: BayQ = None,
    sku: SkuQ = None,
) -> Response:
    """Units on each slot and when a unit last confirmed the figure (``confirmed_at``)."""

    def compute() -> StockPublic:
        data = stock_slots(conn, store=store, bay=bay, sku=sku)
        return StockPublic(data=data, count=len(data))

    version = stock_version(conn)
    return services.stock_cache.respond(request, version, ("slots", store, bay, sku), compute)


@router.get("/skus", response_model=StockSkusPublic)
def get_stock_by_sku(
    request: Request,
    _key: ReaderKey,
    conn: ConnDep,
    services: ServicesDep,
    store: StoreQ = None,
    sku: SkuQ = None,
) -> Response:
    """Units per store and SKU over all its slots, with the stalest confirmation time."""

    def compute() -> StockSkusPublic:
        data = stock_skus(conn, store=store, sku=sku)
        return StockSkusPublic(data=data, count=len(data))

    version = stock_version(conn)
    return services.stock_cache.respond(request, version, ("skus", store, sku), compute)
