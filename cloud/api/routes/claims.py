"""``/v1/claims`` (a unit claims its identity with a code) and ``/v1/claim-codes`` (operators).

``POST /v1/claims`` needs no key — the code is the credential. Every attempt is charged
to its source address, and every unknown code to the group of codes sharing its first
character (32 groups); past the source's limit, or while the group is spent, the answer
is 429 before any lookup. With the defaults at most 1.6 unknown codes a second get
looked up across all sources: against 1,000 open codes of 2^44.8, one week of guessing
finds one with a chance of about 3 in 100,000. Refusals are counted by reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from cloud import claims
from cloud.api.deps import ConnDep, OperatorKey, ServicesDep, UnitKey
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.api.services import Services
from cloud.claim_schemas import (
    ClaimCodeCreate,
    ClaimCodeMade,
    ClaimCodePublic,
    ClaimCodesMade,
    ClaimCodesPublic,
)
from cloud.errors import CloudError, RateLimitedError
from cloud.settings import CloudSettings
from cloud.tuf_repo import TufRepository
from models.claim_code import ClaimCodeError, ClaimGrant, ClaimRequest, display, normalize

GUESS_GROUP_CHARS = 1  # 32 groups, each limited apart: a guessed-at group spares the others

router = APIRouter(tags=["claims"])


def public(code: claims.ClaimCode) -> ClaimCodePublic:
    """The listed form of a code."""
    fields = {f: getattr(code, f) for f in claims.ClaimCode.__dataclass_fields__}
    return ClaimCodePublic(state=code.state(datetime.now(UTC)), **fields)


def _group(typed: str) -> str:
    """The guessing group of a typed code: its first character as the code reads it."""
    try:
        return normalize(typed)[:GUESS_GROUP_CHARS]
    except ClaimCodeError:
        return "?"


def _admit(services: Services, source: str, group: str) -> None:
    """Charge the source one attempt; 429 past its limit or while its group is guessed at."""
    wait = max(
        services.claim_attempts.take(f"source:{source}"),
        services.claim_guesses.wait(f"group:{group}"),
    )
    if wait > 0:
        raise RateLimitedError(
            f"too many claim attempts from {source}, or for codes starting {group}; "
            "wait and try again",
            retry_after=wait,
        )


def _read_file(path: FsPath | None) -> str | None:
    return None if path is None else path.read_text(encoding="utf-8")


@router.post(
    "/v1/claims",
    response_model=ClaimGrant,
    status_code=201,
    responses=responses(400, 404, 409, 410, 422, 429, 503),
)
def claim(body: ClaimRequest, request: Request, services: ServicesDep) -> ClaimGrant:
    """Claim a unit's identity with a claim code and the unit's public key.

    Repeating a claim with the same code and key (an answer lost on the way) gives a
    fresh API key and withdraws the previous one, until the unit confirms with
    ``POST /v1/claims/complete``; from then on the code is spent.
    """
    source = request.client.host if request.client is not None else "unknown"
    group = _group(body.code)
    try:
        _admit(services, source, group)
    except RateLimitedError:
        services.counters.claims_limited += 1  # counted here, not written: floods cost no I/O
        raise
    try:
        with services.store.writer.begin() as conn:
            got = claims.claim(conn, body.code, body.public_key, name=body.name)
    except CloudError as err:
        if err.code == "unknown_code":
            services.claim_guesses.take(f"group:{group}")
        with services.store.writer.begin() as conn:
            claims.count_failure(conn, err.code)
        raise
    settings = services.settings
    return ClaimGrant(
        device_id=got.device_id,
        store_id=got.store_id,
        bay_id=got.bay_id,
        api_key=got.key.token,
        mqtt_username=got.device_id,
        mqtt_password=got.key.token,
        broker_ca_pem=_read_file(settings.broker_ca_file),
        model_signing_key_pem=_read_file(settings.signing_public_key_file),
        tuf_root=_tuf_root(settings),
    )


def _tuf_root(settings: CloudSettings) -> dict[str, Any] | None:
    """The repository's newest root, which the unit will trust (None: no repository yet)."""
    repo = TufRepository.from_settings(settings)
    if not repo.exists():
        return None
    root: dict[str, Any] = json.loads(repo.metadata_file("root.json").read_bytes())
    return root


@router.post(
    "/v1/claims/complete",
    response_model=ClaimCodePublic,
    responses={**AUTH_ERRORS, **responses(404)},
)
def complete(key: UnitKey, services: ServicesDep) -> ClaimCodePublic:
    """The unit holds its identity now: its claim code is spent."""
    assert key.device_id is not None  # unit keys always name their device
    with services.store.writer.begin() as conn:
        return public(claims.complete(conn, key.device_id))


@router.post(
    "/v1/claim-codes",
    response_model=ClaimCodesMade,
    status_code=201,
    responses={**AUTH_ERRORS, **responses(404)},
)
def make_codes(body: ClaimCodeCreate, _key: OperatorKey, services: ServicesDep) -> ClaimCodesMade:
    """Make claim codes for a bay; the codes are in this answer only (stored hashed)."""
    with services.store.writer.begin() as conn:
        made = claims.create_codes(
            conn,
            body.store_id,
            body.bay_id,
            count=body.count,
            expires_in=timedelta(seconds=body.expires_in_s),
            note=body.note,
        )
    data = [ClaimCodeMade(code=display(text), **public(c).model_dump()) for c, text in made]
    return ClaimCodesMade(data=data, count=len(data))


@router.get("/v1/claim-codes", response_model=ClaimCodesPublic, responses=AUTH_ERRORS)
def read_codes(_key: OperatorKey, conn: ConnDep, services: ServicesDep) -> ClaimCodesPublic:
    """Every claim code (never the code), and refused claims by reason.

    ``rate_limited`` counts the attempts this process refused by rate since it started.
    """
    data = [public(c) for c in claims.list_codes(conn)]
    failures = claims.failure_counts(conn)
    failures["rate_limited"] = services.counters.claims_limited
    return ClaimCodesPublic(data=data, count=len(data), failures=failures)


@router.delete(
    "/v1/claim-codes/{code_id}",
    response_model=ClaimCodePublic,
    responses={**AUTH_ERRORS, **responses(404, 409)},
)
def revoke(
    code_id: Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")],
    _key: OperatorKey,
    services: ServicesDep,
) -> ClaimCodePublic:
    """Withdraw a code that is not spent yet."""
    with services.store.writer.begin() as conn:
        return public(claims.revoke_code(conn, code_id))
