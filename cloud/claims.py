"""Claim codes and claims: how a unit gets its identity from a code a person typed.

An operator makes codes for a bay (``fleet claim-codes create``); each is shown once
and stored only as its sha256. A unit claims with a code and its own public key:

- the first claim registers a device on the code's bay, makes its unit key and binds
  the code to that public key (*claimed*);
- the same unit may claim again (its answer was lost, power was cut): it gets a fresh
  key and the previous one is revoked — the code stays bound to its public key;
- the unit confirms with its new key (``POST /v1/claims/complete``): the code is
  *spent*, and any later claim with it is refused with a message that says so.

A code expires (default 7 days) and can be revoked until spent. Every refused claim
is counted by reason (``claim_failures``) for operators to see.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloud import fleet
from cloud.errors import (
    BadRequestError,
    ConflictError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
)
from cloud.keys import NewKey, Role, create_key
from cloud.schemas import DeviceCreate
from cloud.store.tables import api_keys, claim_codes, claim_failures
from models.claim_code import ClaimCodeError, ClaimCodeTypo, new_code, normalize, prefix

DEFAULT_EXPIRY = timedelta(days=7)
MAX_CODES_AT_ONCE = 500


@dataclass(frozen=True)
class ClaimCode:
    """A code as operators see it: never the code itself, only its first characters."""

    code_id: str
    prefix: str
    store_id: str
    bay_id: str
    note: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    claimed_at: datetime | None
    device_id: str | None
    completed_at: datetime | None

    def state(self, now: datetime) -> str:
        """``spent``, ``revoked``, ``expired``, ``claimed`` (not yet confirmed) or ``open``."""
        if self.completed_at is not None:
            return "spent"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "claimed" if self.claimed_at is not None else "open"


@dataclass(frozen=True)
class Claimed:
    """A successful claim: the device and its new key (the token is shown this once)."""

    device_id: str
    store_id: str
    bay_id: str
    key: NewKey


def code_sha256(code: str) -> str:
    """How a normalized code is stored."""
    return hashlib.sha256(f"shelfsense-claim:{code}".encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _code(row: object) -> ClaimCode:
    m = row._mapping  # type: ignore[attr-defined]
    return ClaimCode(**{f: m[f] for f in ClaimCode.__dataclass_fields__})


def create_codes(
    conn: Connection,
    store_id: str,
    bay_id: str,
    *,
    count: int = 1,
    expires_in: timedelta = DEFAULT_EXPIRY,
    note: str = "",
) -> list[tuple[ClaimCode, str]]:
    """Make ``count`` codes for a registered bay; each with its code, shown this once."""
    if not 1 <= count <= MAX_CODES_AT_ONCE:
        raise InvalidRequestError(f"count must be 1..{MAX_CODES_AT_ONCE}", field="count")
    if expires_in <= timedelta(0):
        raise InvalidRequestError("a code must expire in the future", field="expires_in_s")
    fleet.require_bay(conn, store_id, bay_id)
    now = _now()
    made = []
    for _ in range(count):
        code = new_code()
        code_id = secrets.token_hex(6)
        values = {
            "code_id": code_id,
            "code_sha256": code_sha256(code),
            "prefix": prefix(code),
            "store_id": store_id,
            "bay_id": bay_id,
            "note": note,
            "created_at": now,
            "expires_at": now + expires_in,
        }
        conn.execute(insert(claim_codes).values(**values))
        made.append((get_code(conn, code_id), code))
    return made


def get_code(conn: Connection, code_id: str) -> ClaimCode:
    """One code by id; :class:`NotFoundError` if there is none."""
    row = conn.execute(select(claim_codes).where(claim_codes.c.code_id == code_id)).first()
    if row is None:
        raise NotFoundError(f"no claim code {code_id!r}", field="code_id")
    return _code(row)


def list_codes(conn: Connection, store_id: str | None = None) -> list[ClaimCode]:
    """Every code (of one store if given), newest first."""
    stmt = select(claim_codes).order_by(claim_codes.c.created_at.desc(), claim_codes.c.code_id)
    if store_id is not None:
        stmt = stmt.where(claim_codes.c.store_id == store_id)
    return [_code(r) for r in conn.execute(stmt)]


def revoke_code(conn: Connection, code_id: str) -> ClaimCode:
    """Revoke a code that is not spent (idempotent); a spent code is a 409."""
    code = get_code(conn, code_id)
    if code.completed_at is not None:
        raise ConflictError(
            f"claim code {code_id} was already used by {code.device_id}; revoke that unit's key",
            code="spent_code",
        )
    if code.revoked_at is None:
        conn.execute(
            update(claim_codes).where(claim_codes.c.code_id == code_id).values(revoked_at=_now())
        )
    return get_code(conn, code_id)


def count_failure(conn: Connection, reason: str) -> None:
    """Add one refused claim of ``reason`` to the counters operators see."""
    now = _now()
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        claim_failures
    )
    conn.execute(
        ins.values(reason=reason, count=1, last_at=now).on_conflict_do_update(
            index_elements=["reason"],
            set_={"count": claim_failures.c.count + 1, "last_at": now},
        )
    )


def failure_counts(conn: Connection) -> dict[str, int]:
    """Refused claims by reason, since the store was made."""
    rows = conn.execute(select(claim_failures.c.reason, claim_failures.c.count))
    return {reason: int(count) for reason, count in rows}


def _claimable(code: ClaimCode | None, now: datetime) -> ClaimCode:
    """``code`` when it may be claimed; otherwise the refusal a person understands."""
    if code is None:
        raise NotFoundError(
            "this claim code is not known: check it, or ask your operator for a new one",
            field="code",
            code="unknown_code",
        )
    state = code.state(now)
    if state == "spent":
        raise ConflictError(
            "this claim code has already been used to set up a unit; ask for a new one",
            field="code",
            code="spent_code",
        )
    if state == "revoked":
        raise GoneError(
            "this claim code was withdrawn by the operator; ask for a new one",
            field="code",
            code="revoked_code",
        )
    if state == "expired":
        raise GoneError(
            "this claim code has expired; ask for a new one", field="code", code="expired_code"
        )
    return code


def claim(conn: Connection, typed: str, public_key: str, *, name: str = "") -> Claimed:
    """Claim with a typed code and the unit's public key (see the module docstring)."""
    try:
        code_text = normalize(typed)
    except ClaimCodeTypo as err:  # the form is in the schema; the check character is not
        raise BadRequestError(str(err), field="code", code="bad_code") from None
    except ClaimCodeError as err:
        raise InvalidRequestError(str(err), field="code", code="bad_code") from None
    row = conn.execute(
        select(claim_codes)
        .where(claim_codes.c.code_sha256 == code_sha256(code_text))
        .with_for_update()
    ).first()
    now = _now()
    code = _claimable(None if row is None else _code(row), now)
    if code.claimed_at is not None and row is not None and row.public_key != public_key:
        raise ConflictError(
            "another unit is being set up with this claim code; ask for a new one",
            field="code",
            code="code_in_use",
        )
    device_id = code.device_id
    if device_id is None:
        device_id = f"{code.store_id}-{code.bay_id}-{secrets.token_hex(3)}"[-64:].lstrip("-.")
        fleet.add_device(
            conn,
            DeviceCreate(
                device_id=device_id, store_id=code.store_id, bay_id=code.bay_id, name=name
            ),
        )
    else:  # a retry: the unit never confirmed, so the keys it was given are withdrawn
        conn.execute(
            update(api_keys)
            .where(api_keys.c.device_id == device_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    key = create_key(conn, role=Role.UNIT, name=f"claim {code.code_id}", device_id=device_id)
    conn.execute(
        update(claim_codes)
        .where(claim_codes.c.code_id == code.code_id)
        .values(claimed_at=now, public_key=public_key, device_id=device_id)
    )
    return Claimed(device_id, code.store_id, code.bay_id, key)


def complete(conn: Connection, device_id: str) -> ClaimCode:
    """The unit confirms it holds its identity: its code is spent (idempotent)."""
    row = conn.execute(select(claim_codes).where(claim_codes.c.device_id == device_id)).first()
    if row is None:
        raise NotFoundError(f"unit {device_id} was not set up with a claim code", code="no_claim")
    if row.completed_at is None:
        conn.execute(
            update(claim_codes)
            .where(claim_codes.c.code_id == row.code_id)
            .values(completed_at=_now())
        )
    return get_code(conn, row.code_id)
