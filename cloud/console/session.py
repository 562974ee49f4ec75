"""Console sessions and CSRF tokens: signed values, checked without storing anything.

A session cookie holds the key id, its role, a random nonce and an expiry,
signed with HMAC-SHA256 under a secret kept in the database (so every replica
accepts it). The CSRF token of a form is an HMAC of the session's nonce; the
sign-in form, before any session, uses the nonce of a short pre-session cookie.
Everything here is pure: values in, values (or None) out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "ss_console"
PRESESSION_COOKIE = "ss_console_pre"
SESSION_S = 12 * 3600
MAX_COOKIE = 1024


@dataclass(frozen=True)
class Session:
    """Who is signed in: the key's id and role, until ``expires`` (Unix seconds)."""

    key_id: str
    role: str
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}\n{data}".encode(), hashlib.sha256).digest())


def new_nonce() -> str:
    """A fresh random nonce."""
    return secrets.token_urlsafe(18)


def sign_session(secret: bytes, session: Session) -> str:
    """The cookie value of ``session``."""
    body = _b64(
        json.dumps(
            {"k": session.key_id, "r": session.role, "n": session.nonce, "e": session.expires}
        ).encode()
    )
    return f"{body}.{_mac(secret, 'session', body)}"


def read_session(secret: bytes, cookie: str | None, *, now: float) -> Session | None:
    """The session in ``cookie`` when its signature holds and it has not expired."""
    if not cookie or len(cookie) > MAX_COOKIE or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, "session", body).encode()):
        return None
    try:
        doc = json.loads(_unb64(body))
        session = Session(str(doc["k"]), str(doc["r"]), str(doc["n"]), float(doc["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def csrf_token(secret: bytes, nonce: str) -> str:
    """The CSRF token that forms of the session (or pre-session) with ``nonce`` carry."""
    return _mac(secret, "csrf", nonce)


def csrf_ok(secret: bytes, nonce: str | None, token: str | None) -> bool:
    """True when ``token`` is the CSRF token of ``nonce``."""
    if not nonce or not token or len(token) > 100:
        return False
    return hmac.compare_digest(token.encode(), csrf_token(secret, nonce).encode())
