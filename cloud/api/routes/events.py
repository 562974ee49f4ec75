"""``/v1/events``: the event feed in arrival order, with a signed cursor and ETags."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from cloud.api.deps import ConnDep, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS
from cloud.api.etag import NOT_MODIFIED, etag_response
from cloud.api.params import CursorQ, SkuQ, StoreQ
from cloud.checks import aware
from cloud.reads import feed
from cloud.schemas import FeedPage, Instant

router = APIRouter(prefix="/v1/events", tags=["events"], responses={**AUTH_ERRORS, **NOT_MODIFIED})


@router.get("", response_model=FeedPage)
def get_events(
    request: Request,
    _key: ReaderKey,
    conn: ConnDep,
    services: ServicesDep,
    store: StoreQ = None,
    sku: SkuQ = None,
    kind: Annotated[Literal["interest", "stock", "level"] | None, Query(alias="type")] = None,
    since: Annotated[Instant | None, Query(description="Only events stamped at or after.")] = None,
    cursor: CursorQ = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Response:
    """Events after ``cursor`` in arrival order. Keep the filters the same while paging.

    An empty page still returns a cursor to poll again with; a cursor that was
    edited, or made for other filters, is refused with 400.
    """
    page = feed(
        conn,
        services.codec,
        store=store,
        sku=sku,
        kind=kind,
        since=aware(since) if since is not None else None,
        cursor=cursor,
        limit=limit or services.settings.page_default,
    )
    return etag_response(request, page)
