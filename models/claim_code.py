"""Claim codes: what store staff type (or show as a QR code) to put a unit into service.

A code is ten characters of Crockford base32 — nine random (about 44.8 bits) and
Crockford's mod 37 check character — printed in two groups of five: ``7KQ2M-XB9D4``. Reading is
forgiving the way Crockford meant it: case, spaces and hyphens are ignored, ``O`` is
read as ``0`` and ``I``/``L`` as ``1``. The check character catches every single
mistyped character and every swap of two neighbours, so a typo is told to the person
before any request is made. Edge and cloud share this module.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.wire import DEVICE_ID_PATTERN, ID_PATTERN, TEXT_PATTERN

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
RANDOM_CHARS = 9
LENGTH = RANDOM_CHARS + 1
PREFIX_CHARS = 3  # how much of a code operators see, and what guessing is limited by
_READ_AS = {"O": "0", "I": "1", "L": "1"}
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_N = len(ALPHABET)
CHECK_MODULUS = 37  # prime and not 1 modulo 32: every single error and neighbour swap shows


class ClaimCodeError(ValueError):
    """A code that cannot be right; the message says why, for the person typing it."""


class ClaimCodeTypo(ClaimCodeError):
    """A code of the right form whose check character does not match: a typo."""


def _check_value(body: str) -> int:
    """Crockford's check: the body read as a base-32 number, modulo the prime 37."""
    value = 0
    for char in body:
        value = value * _N + _VALUE[char]
    return value % CHECK_MODULUS


def new_code() -> str:
    """A fresh random code, normalized (no hyphen).

    Bodies whose check would fall outside the alphabet (values 32–36, Crockford's
    ``*~$=U``, awkward to type) are drawn again, so every code is plain base32.
    """
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
        check = _check_value(body)
        if check < _N:
            return body + ALPHABET[check]


def normalize(text: str) -> str:
    """The code in ``text`` as ten canonical characters; :class:`ClaimCodeError` if it is not one.

    Raises for a wrong length, a character that is not in the alphabet, or a check
    character that does not match (a typo).
    """
    cleaned = "".join(_READ_AS.get(c, c) for c in text.upper() if c not in " -\t")
    if len(cleaned) != LENGTH:
        raise ClaimCodeError(
            f"a claim code has {LENGTH} characters (like 7KQ2M-XB9D4); this one has {len(cleaned)}"
        )
    bad = sorted({c for c in cleaned if c not in _VALUE})
    if bad:
        raise ClaimCodeError(f"a claim code has no {', '.join(repr(c) for c in bad)} in it")
    if _check_value(cleaned[:-1]) != _VALUE[cleaned[-1]]:
        raise ClaimCodeTypo("this claim code has a typo: please check every character")
    return cleaned


def display(code: str) -> str:
    """A normalized code as people read it: two groups of five."""
    return f"{code[:5]}-{code[5:]}"


def prefix(code: str) -> str:
    """The first characters of a normalized code (safe to show and to limit by)."""
    return code[:PREFIX_CHARS]


# the claim exchange: what a unit sends with a code, and what the cloud grants it --------

# ten characters of the alphabet (O, I, L read as digits), spaces and hyphens anywhere
CODE_PATTERN = r"^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){10}$"
PUBLIC_KEY_PATTERN = r"^[A-Za-z0-9_-]{43}=?$"  # an Ed25519 public key, 32 bytes, base64url


class ClaimRequest(BaseModel):
    """``POST /v1/claims``: the code a person typed and the unit's own public key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(
        ...,
        min_length=1,
        max_length=32,
        pattern=CODE_PATTERN,
        examples=["7KQ2M-XB9D4"],
        description="The claim code as typed; hyphens, spaces and case do not matter.",
    )
    public_key: str = Field(
        ...,
        pattern=PUBLIC_KEY_PATTERN,
        description="The unit's Ed25519 public key (raw 32 bytes, base64url); "
        "a retried claim must send the same key.",
    )
    name: str = Field("", max_length=200, pattern=TEXT_PATTERN, description="A name for the unit.")


class ClaimGrant(BaseModel):
    """What a claimed unit receives: who it is and what it trusts. Shown to it alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN)
    store_id: str = Field(..., pattern=ID_PATTERN)
    bay_id: str = Field(..., pattern=ID_PATTERN)
    api_key: str = Field(..., min_length=1, max_length=200)
    mqtt_username: str = Field(..., pattern=DEVICE_ID_PATTERN)
    mqtt_password: str = Field(..., min_length=1, max_length=200)
    broker_ca_pem: str | None = Field(None, max_length=65_536, description="CA of the broker.")
    model_signing_key_pem: str | None = Field(
        None, max_length=4096, description="Public key that model bundles are signed with."
    )
    tuf_root: dict[str, Any] | None = Field(None, description="Trusted TUF root, when served.")
