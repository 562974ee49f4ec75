"""``/v1/interest``: shelf-interest per SKU per hour, with ETags.

Answers are cached per query and whole hours until the next ingest that changes
the store's interest (``interest_versions``), so a poll that finds nothing new costs
one tiny read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from cloud.api.deps import ConnDep, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS
from cloud.api.etag import NOT_MODIFIED
from cloud.api.params import BayQ, SkuQ, StoreQ
from cloud.checks import aware
from cloud.interest_rollup import version
from cloud.reads import interest, interest_hours
from cloud.schemas import Instant, InterestPublic

router = APIRouter(
    prefix="/v1/interest", tags=["interest"], responses={**AUTH_ERRORS, **NOT_MODIFIED}
)


@router.get("", response_model=InterestPublic)
def get_interest(
    request: Request,
    _key: ReaderKey,
    conn: ConnDep,
    services: ServicesDep,
    store: StoreQ = None,
    sku: SkuQ = None,
    bay: BayQ = None,
    since: Annotated[Instant | None, Query(description="Default: 24 h before until.")] = None,
    until: Annotated[Instant | None, Query(description="Default: now.")] = None,
) -> Response:
    """Per store, SKU and hour: episodes by class, dwell mean and max, touch-to-take conversion.

    Whole hours: every hour that overlaps ``[since, until)``, the current one as far
    as it has come. ``data`` counts, per SKU, the episodes that reached or handled one of its slots
    (camera slot zones, weight changes); ``bays`` counts every episode per bay and
    hour, glances and pass-bys without a reach included. ``sku`` narrows ``data``
    only; ``store`` and ``bay`` narrow both. At most 31 days per request.
    """
    end = aware(until) if until is not None else datetime.now(UTC)
    start = aware(since) if since is not None else end - timedelta(hours=24)
    hours = interest_hours(start, end)  # the range is checked before any cached answer

    def compute() -> InterestPublic:
        data, bays = interest(conn, store=store, sku=sku, bay=bay, since=start, until=end)
        return InterestPublic(data=data, count=len(data), bays=bays)

    key = ("interest", store, sku, bay, *hours)
    return services.interest_cache.respond(request, version(conn, store), key, compute)
