"""Mosquitto password and ACL files for the fleet, from the keys in the store.

Each unit logs in to the broker with its device id as user name and its unit
API key as password; the ACL lets it publish and subscribe only under
``shelfsense/<device_id>/…``. The cloud's own service user (the ingest worker)
may read and write every unit's topics. Both files are written atomically;
point ``password_file`` and ``acl_file`` of ``mosquitto.conf`` at them and send
the broker SIGHUP to reload.

Only the newest live key of a unit goes into the password file (Mosquitto keeps
one password per user).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from cloud.keys import Role, mosquitto_hash
from cloud.store.tables import api_keys
from models.atomic import write_text_atomic
from models.wire import topic


@dataclass(frozen=True)
class BrokerUser:
    """A broker login: user name and Mosquitto password hash."""

    username: str
    password_hash: str


def unit_users(conn: Connection) -> list[BrokerUser]:
    """One broker user per unit with a live key: its newest key's hash."""
    rows = conn.execute(
        select(api_keys.c.device_id, api_keys.c.mqtt_hash)
        .where(
            api_keys.c.role == Role.UNIT.value,
            api_keys.c.revoked_at.is_(None),
            api_keys.c.mqtt_hash.is_not(None),
        )
        .order_by(api_keys.c.created_at, api_keys.c.key_id)
    )
    newest: dict[str, str] = {}
    for device_id, hashed in rows:
        newest[device_id] = hashed
    return [BrokerUser(d, h) for d, h in sorted(newest.items())]


def password_text(users: list[BrokerUser]) -> str:
    """The password file: ``user:hash`` lines."""
    return "".join(f"{u.username}:{u.password_hash}\n" for u in users)


def acl_text(unit_ids: list[str], service_user: str | None) -> str:
    """The ACL file: each unit confined to its own topics, the service user to all of them."""
    lines = ["# shelfsense broker ACL: each unit only under shelfsense/<its id>/", ""]
    if service_user is not None:
        lines += [f"user {service_user}", "topic readwrite shelfsense/#", ""]
    for device_id in unit_ids:
        lines += [f"user {device_id}", f"topic readwrite {topic(device_id, '#')}", ""]
    return "\n".join(lines)


def write_broker_files(
    conn: Connection,
    *,
    password_file: Path,
    acl_file: Path,
    service_user: str | None = None,
    service_password: str | None = None,
) -> list[str]:
    """Write both files from the live unit keys; returns the unit ids written."""
    users = unit_users(conn)
    if service_user is not None:
        if not service_password:
            raise ValueError("the service user needs a password")
        if any(u.username == service_user for u in users):
            raise ValueError(f"service user {service_user!r} clashes with a device id")
        users = [BrokerUser(service_user, mosquitto_hash(service_user, service_password)), *users]
    unit_ids = [u.username for u in users if u.username != service_user]
    write_text_atomic(password_file, password_text(users), perms=0o600)
    write_text_atomic(acl_file, acl_text(unit_ids, service_user), perms=0o644)
    return unit_ids
