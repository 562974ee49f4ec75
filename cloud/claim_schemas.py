"""The claim-code API's bodies (operator side); the claim exchange itself is in ``models``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cloud.schemas import ApiModel
from models.wire import ID_PATTERN, Text


class ClaimCodeCreate(ApiModel):
    """Codes to make for one registered bay."""

    store_id: str = Field(..., pattern=ID_PATTERN, examples=["store-12"])
    bay_id: str = Field(..., pattern=ID_PATTERN, examples=["bay-3"])
    count: int = Field(1, ge=1, le=500, description="How many codes.")
    expires_in_s: int = Field(
        7 * 86400, ge=60, le=365 * 86400, description="Seconds until the codes expire."
    )
    note: Text = Field("", max_length=200, examples=["Aisle 4 refit"])


class ClaimCodePublic(ApiModel):
    """A code as operators see it: its first characters, never the whole code."""

    code_id: str
    prefix: str = Field(..., description="The code's first characters, to recognise it.")
    store_id: str
    bay_id: str
    note: str
    state: str = Field(..., description="open, claimed (unconfirmed), spent, expired or revoked")
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    claimed_at: datetime | None
    device_id: str | None
    completed_at: datetime | None


class ClaimCodeMade(ClaimCodePublic):
    """A code just made, with the code itself: shown this once only."""

    code: str = Field(..., examples=["7KQ2M-XB9D4"])


class ClaimCodesMade(ApiModel):
    """Codes just made."""

    data: list[ClaimCodeMade]
    count: int


class ClaimCodesPublic(ApiModel):
    """Codes, and refused claims by reason since the store was made."""

    data: list[ClaimCodePublic]
    count: int
    failures: dict[str, int] = Field(
        ..., description="Refused claims by code: unknown_code, bad_code, rate_limited …"
    )
