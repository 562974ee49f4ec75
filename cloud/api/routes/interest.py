"""``/v1/interest``: shelf-interest per SKU per hour, with ETags.

Answers are cached per query and whole hours until the next ingest that changes
the store's interest (``interest_versions``), so a poll that finds nothing new costs
one tiny read. The per-bay half of an answer is the same for every SKU of a store,
so it is kept on its own and an answer for another SKU reads only its SKU's rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter

from cloud.api.deps import ConnDep, ReaderKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS
from cloud.api.etag import NOT_MODIFIED
from cloud.api.params import BayQ, SkuQ, StoreQ
from cloud.checks import aware
from cloud.interest_rollup import version
from cloud.reads import interest_bays, interest_hours, interest_skus
from cloud.schemas import Instant, InterestBayHourPublic, InterestHourPublic, InterestPublic

_SKU_ROWS = TypeAdapter(list[InterestHourPublic])
_BAY_ROWS = TypeAdapter(list[InterestBayHourPublic])

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

    ver = version(conn, store)

    def compute() -> bytes:  # InterestPublic's JSON, from its two halves
        data = interest_skus(conn, hours, store=store, sku=sku, bay=bay)
        bays = services.interest_cache.get(
            ver,
            ("interest-bays", store, bay, *hours),
            lambda: _BAY_ROWS.dump_json(interest_bays(conn, hours, store=store, bay=bay)),
        )
        return b'{"data":%b,"count":%d,"bays":%b}' % (_SKU_ROWS.dump_json(data), len(data), bays)

    key = ("interest", store, sku, bay, *hours)
    return services.interest_cache.respond(request, ver, key, compute)
