"""``/v1/sales``, ``/v1/corrections``, ``/v1/labels/export`` and ``/v1/labels/windows``:
ground truth in, training data out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from cloud.api.deps import OperatorKey, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.checks import aware
from cloud.labels import add_correction, add_sale, export_lines, rematch
from cloud.schemas import CorrectionCreate, CorrectionPublic, Instant, SaleCreate, SalePublic
from cloud.training_data import labelled_windows

sales_router = APIRouter(prefix="/v1/sales", tags=["labels"], responses=AUTH_ERRORS)
corrections_router = APIRouter(
    prefix="/v1/corrections", tags=["labels"], responses={**AUTH_ERRORS, **responses(404)}
)
export_router = APIRouter(prefix="/v1/labels", tags=["labels"], responses=AUTH_ERRORS)


@sales_router.post("", response_model=SalePublic, status_code=201)
def post_sale(body: SaleCreate, _key: ReaderKey, services: ServicesDep) -> SalePublic:
    """A POS sale; its units are matched to removal events near its time (training labels)."""
    with services.store.writer.begin() as conn:
        return add_sale(conn, body, services.window)


@corrections_router.post("", response_model=CorrectionPublic, status_code=201)
def post_correction(
    body: CorrectionCreate, _key: ReaderKey, services: ServicesDep
) -> CorrectionPublic:
    """Staff set what one event really was; this overrides any label from a sale."""
    with services.store.writer.begin() as conn:
        return add_correction(conn, body)


@export_router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}},
)
def export(
    _key: OperatorKey,
    services: ServicesDep,
    kind: Annotated[Literal["interest", "stock", "level"] | None, Query(alias="type")] = None,
    since: Annotated[Instant | None, Query()] = None,
    labeled_only: bool = True,
) -> StreamingResponse:
    """Events with their labels as JSON lines (format in :mod:`cloud.labels`), for training.

    Sales not yet fully matched are retried first.
    """
    rematch(services.store, services.window)
    start = aware(since) if since is not None else None

    def lines() -> Iterator[bytes]:
        with services.store.engine.connect() as conn:
            for line in export_lines(conn, kind=kind, since=start, labeled_only=labeled_only):
                yield line.encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@export_router.get(
    "/windows",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}},
)
def export_windows(
    _key: OperatorKey,
    services: ServicesDep,
    since: Annotated[Instant | None, Query()] = None,
    labeled_only: bool = True,
) -> StreamingResponse:
    """The windows units uploaded, with their labels, as ``models.dataset`` JSON lines
    (what ``shelfsense cloud train`` reads; format in :mod:`cloud.training_data`).

    Sales not yet fully matched are retried first.
    """
    rematch(services.store, services.window)
    start = aware(since) if since is not None else None

    def lines() -> Iterator[bytes]:
        with services.store.engine.connect() as conn:
            for w in labelled_windows(conn, labeled_only=labeled_only, since=start):
                yield w.line().encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
