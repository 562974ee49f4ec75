"""``/v1/health``: is the service up and can it reach its database."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.deps import ServicesDep
from cloud.schemas import HealthPublic

router = APIRouter(prefix="/v1/health", tags=["health"])


@router.get("", response_model=HealthPublic)
def health(services: ServicesDep) -> HealthPublic:
    """Liveness, and whether the database answers (no key needed)."""
    try:
        with services.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db = "ok"
    except SQLAlchemyError:
        db = "unreachable"
    return HealthPublic(
        status="ok" if db == "ok" else "degraded",
        database="ok" if db == "ok" else "unreachable",
        dialect=services.store.dialect,
    )
