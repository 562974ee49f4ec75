"""``/v1/health``: is the service up, can it reach its database, is its MQTT ingest working.

200 when everything this process depends on works; 503 naming the failing
dependency otherwise, so a load balancer or an operator's probe sees an ingest
worker that cannot store, or a database that is away, without reading logs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.deps import ServicesDep
from cloud.failures import reason
from cloud.schemas import HealthPublic

router = APIRouter(prefix="/v1/health", tags=["health"])
DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthPublic, "description": "The database or MQTT ingest is down"}
}


@router.get("", response_model=HealthPublic, responses=DOWN)
def health(request: Request, services: ServicesDep) -> JSONResponse:
    """Liveness, and whether the database answers and MQTT ingest works (no key needed)."""
    problems: list[str] = []
    try:
        with services.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as err:
        database = "unreachable"
        problems.append(f"database: {reason(err, 200)}")
    ingest = "off"
    for name in ("ingest_worker", "fleet_worker"):  # events, and the units' state
        worker = getattr(request.app.state, name, None)
        if worker is None:
            continue
        why = worker.down_reason()
        ingest = "ok" if why is None and ingest != "down" else "down"
        if why is not None:
            problems.append(f"ingest: {why}")
    body = HealthPublic(
        status="down" if problems else "ok",
        database=database,  # type: ignore[arg-type]
        dialect=services.store.dialect,
        ingest=ingest,  # type: ignore[arg-type]
        detail="; ".join(problems) or None,
    )
    return JSONResponse(body.model_dump(), status_code=503 if problems else 200)
