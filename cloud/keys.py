"""API keys: roles, tokens made once and stored hashed, lookup with a constant-time compare.

A token reads ``ssk_<key_id>_<secret>``. The store keeps the key id, the role,
the device it belongs to (unit keys) and ``sha256(token)``; the token itself is
shown once, at creation. For unit keys the Mosquitto password hash of the token
is kept too, so the broker's password file can be written at any later time
(:mod:`cloud.broker_files`): a unit logs in to the broker as its device id with
its API key as password.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select, update

from cloud.errors import AuthenticationError, NotFoundError
from cloud.store.tables import api_keys

TOKEN_PREFIX = "ssk"
MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd 2.x writes
MOSQUITTO_SALT_BYTES = 12


class Role(enum.StrEnum):
    """Who a key speaks for."""

    UNIT = "unit"  # posts its own device's events, reads its desired state
    BACKEND = "backend"  # reads stock, interest, the feed; posts sales and corrections
    OPERATOR = "operator"  # everything: fleet, keys, models, label export


@dataclass(frozen=True)
class ApiKey:
    """A key as the service sees it after authentication (never the secret)."""

    key_id: str
    name: str
    role: Role
    device_id: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just made: the record and the token, which is never shown again."""

    key: ApiKey
    token: str


def token_sha256(token: str) -> str:
    """Hex sha256 of a token, as stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> str:
    """The key id inside a token; :class:`AuthenticationError` when malformed."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isalnum():
        raise AuthenticationError("malformed API key", code="invalid_key")
    return parts[1]


def mosquitto_hash_py(password: str, *, salt: bytes | None = None) -> str:
    """The PBKDF2-SHA512 hash Mosquitto 2 reads: ``$7$<iterations>$<salt>$<hash>`` (base64)."""
    salt = os.urandom(MOSQUITTO_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${MOSQUITTO_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def mosquitto_hash(username: str, password: str) -> str:
    """A Mosquitto password hash, by ``mosquitto_passwd`` when installed, else in Python."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        return mosquitto_hash_py(password)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "passwd"
        subprocess.run(
            [tool, "-c", "-b", str(path), username, password],
            check=True,
            capture_output=True,
            timeout=10,
        )
        line = path.read_text().strip()
    user, _, hashed = line.partition(":")
    if user != username or not hashed.startswith("$"):
        return mosquitto_hash_py(password)
    return hashed


def mosquitto_verify(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (PBKDF2-SHA512) Mosquitto hash."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(base64.b64encode(digest).decode(), parts[4])


def _from_row(row: object) -> ApiKey:
    r = row._mapping  # type: ignore[attr-defined]
    return ApiKey(
        key_id=r["key_id"],
        name=r["name"],
        role=Role(r["role"]),
        device_id=r["device_id"],
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
    )


def create_key(
    conn: Connection, *, role: Role, name: str = "", device_id: str | None = None
) -> NewKey:
    """Make a key; unit keys must name their device, other roles must not."""
    if (role is Role.UNIT) != (device_id is not None):
        raise ValueError("a unit key needs a device_id, and only a unit key has one")
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32).replace('_', '-')}"
    now = datetime.now(UTC)
    mqtt = mosquitto_hash(device_id, token) if device_id is not None else None
    conn.execute(
        insert(api_keys).values(
            key_id=key_id,
            name=name,
            role=role.value,
            device_id=device_id,
            secret_sha256=token_sha256(token),
            mqtt_hash=mqtt,
            created_at=now,
            revoked_at=None,
        )
    )
    key = ApiKey(key_id, name, role, device_id, now, None)
    return NewKey(key=key, token=token)


def list_keys(conn: Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    """Every key, oldest first."""
    stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if not include_revoked:
        stmt = stmt.where(api_keys.c.revoked_at.is_(None))
    return [_from_row(r) for r in conn.execute(stmt)]


def revoke_key(conn: Connection, key_id: str) -> ApiKey:
    """Revoke a key (idempotent); :class:`NotFoundError` if there is no such key."""
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_id!r}", field="key_id")
    if row.revoked_at is None:
        conn.execute(
            update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=datetime.now(UTC))
        )
    got = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    return _from_row(got)


def authenticate(conn: Connection, token: str) -> ApiKey:
    """The live key a token belongs to; :class:`AuthenticationError` otherwise."""
    key_id = split_token(token)
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    expected = row.secret_sha256 if row is not None else "0" * 64
    ok = hmac.compare_digest(token_sha256(token), expected)
    if row is None or not ok:
        raise AuthenticationError("unknown API key", code="invalid_key")
    if row.revoked_at is not None:
        raise AuthenticationError("this API key was revoked", code="revoked_key")
    return _from_row(row)


def unit_mqtt_hashes(conn: Connection) -> dict[str, list[str]]:
    """Per device, the Mosquitto hashes of its live unit keys."""
    out: dict[str, list[str]] = {}
    stmt = select(api_keys.c.device_id, api_keys.c.mqtt_hash).where(
        api_keys.c.role == Role.UNIT.value,
        api_keys.c.revoked_at.is_(None),
        api_keys.c.mqtt_hash.is_not(None),
    )
    for device_id, hashed in conn.execute(stmt):
        out.setdefault(device_id, []).append(hashed)
    return out
