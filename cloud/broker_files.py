"""Mosquitto 2 files for the fleet, from the keys in the store: who may log in and do what.

The broker has two listeners (``per_listener_settings true``):

- the **unit listener** (the one units reach): logins from ``units.passwd`` (each
  unit's device id with its newest live unit API key), ``use_username_as_clientid``
  so a unit's client id is always its login (no unit can knock another offline by
  taking its client id), and the dynamic-security plugin with ``units-dynsec.json``
  for what each unit may do. The plain ``acl_file`` cannot do that job in Mosquitto
  2.0: it grants every SUBSCRIBE and only filters delivery, so a unit could join the
  ingest workers' ``$share/ingest/...`` group and make the broker hand it (and so
  drop) a share of every unit's events. The plugin refuses such a SUBSCRIBE outright.
  A unit may publish on its own ``events``, ``health``, ``reported`` and ``status``
  and subscribe to and receive its own ``ack`` and ``desired``; nothing else.
- the **service listener** (loopback or the cloud's private network): logins from
  ``service.passwd`` (the cloud's service user only; units cannot log in there) and
  ``service.acl`` (every unit's topics). Ingest workers and the desired-state
  publisher connect there as the service user, each with its own client id.

Passwords stay in the password files, which Mosquitto rereads on SIGHUP, and then
drops connected clients whose password is gone: revoking a key and rewriting
``units.passwd`` (:func:`write_unit_passwords`) takes a unit off the broker without
a restart. The plugin reads ``units-dynsec.json`` only at start: a unit added later
can log in after a SIGHUP but may do nothing until the broker restarts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from cloud.keys import Role, mosquitto_hash
from cloud.store.tables import api_keys
from models.atomic import write_text_atomic
from models.wire import MAX_EVENT_BYTES, topic

UNIT_PUBLISHES = ("events", "health", "reported", "status")
UNIT_READS = ("ack", "desired")

UNIT_PASSWORDS = "units.passwd"
UNIT_DYNSEC = "units-dynsec.json"
SERVICE_PASSWORDS = "service.passwd"
SERVICE_ACL = "service.acl"

DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


@dataclass(frozen=True)
class BrokerUser:
    """A broker login: user name and Mosquitto password hash."""

    username: str
    password_hash: str


@dataclass(frozen=True)
class BrokerConf:
    """What ``mosquitto.conf`` needs beyond the files: listeners, limits, persistence."""

    files_dir: Path
    unit_host: str = "0.0.0.0"
    unit_port: int = 1883
    service_host: str = "127.0.0.1"
    service_port: int = 1884
    max_queued_messages: int = 0
    persistence_dir: Path | None = Path("/var/lib/mosquitto")
    dynsec_plugin: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None


def find_dynsec_plugin() -> Path | None:
    """The dynamic-security plugin of the installed Mosquitto, if found where distros put it."""
    for candidate in DYNSEC_PLUGIN_PATHS:
        if Path(candidate).exists():
            return Path(candidate)
    return None


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


def password_text(users: Sequence[BrokerUser]) -> str:
    """A password file: ``user:hash`` lines."""
    return "".join(f"{u.username}:{u.password_hash}\n" for u in users)


def unit_dynsec(unit_ids: Sequence[str]) -> dict[str, Any]:
    """The dynamic-security config: one role per unit, nothing allowed by default.

    Clients carry no password (the plugin defers to ``units.passwd``, which a SIGHUP
    reloads) and no client id (``use_username_as_clientid`` on the listener sets it).
    The plugin has no ``%u`` patterns in 2.0, hence a role per unit.
    """
    roles = []
    for device_id in unit_ids:
        acls = [
            {"acltype": "publishClientSend", "topic": topic(device_id, leaf), "allow": True}
            for leaf in UNIT_PUBLISHES
        ]
        for leaf in UNIT_READS:
            acls.append(
                {"acltype": "subscribeLiteral", "topic": topic(device_id, leaf), "allow": True}
            )
            acls.append(
                {"acltype": "publishClientReceive", "topic": topic(device_id, leaf), "allow": True}
            )
        roles.append({"rolename": f"unit-{device_id}", "acls": acls})
    return {
        "clients": [{"username": d, "roles": [{"rolename": f"unit-{d}"}]} for d in unit_ids],
        "roles": roles,
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


def service_acl_text(service_user: str | None) -> str:
    """The service listener's ACL: the service user reads and writes every unit's topics."""
    lines = ["# shelfsense broker ACL, service listener: the cloud's service user only", ""]
    if service_user is not None:
        lines += [f"user {service_user}", "topic readwrite shelfsense/#", ""]
    return "\n".join(lines)


MAX_PACKET_BYTES = 2 * MAX_EVENT_BYTES


def mosquitto_conf_text(conf: BrokerConf) -> str:
    """A ``mosquitto.conf`` for the two listeners, usable as is (paths absolute)."""
    plugin = conf.dynsec_plugin or find_dynsec_plugin()
    if plugin is None:
        raise FileNotFoundError("mosquitto_dynamic_security.so not found; name it")
    d = conf.files_dir.resolve()
    out = [
        "# shelfsense Mosquitto 2 config, written by `shelfsense fleet devices broker-files`",
        "per_listener_settings true",
        # Nothing is dropped silently: a unit has at most one batch unacknowledged,
        # so what queues for the ingest workers is bounded by the fleet anyway.
        f"max_queued_messages {conf.max_queued_messages}",
        # No packet larger than the largest valid event (models.wire.MAX_EVENT_BYTES) plus
        # its topic and headers: the broker drops a sender of anything bigger, unread.
        f"max_packet_size {MAX_PACKET_BYTES}",
    ]
    if conf.persistence_dir is not None:
        out += ["persistence true", f"persistence_location {conf.persistence_dir.resolve()}/"]
    else:
        out += ["persistence false"]
    out += [
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "",
        "# units: login = device id = client id; rights from the dynamic-security plugin",
        f"listener {conf.unit_port} {conf.unit_host}",
        "allow_anonymous false",
        "use_username_as_clientid true",
        f"password_file {d / UNIT_PASSWORDS}",
        f"plugin {plugin}",
        f"plugin_opt_config_file {d / UNIT_DYNSEC}",
    ]
    for key, value in (
        ("cafile", conf.cafile),
        ("certfile", conf.certfile),
        ("keyfile", conf.keyfile),
    ):
        if value is not None:
            out.append(f"{key} {value.resolve()}")
    out += [
        "",
        "# the cloud's service user (ingest workers, desired-state publisher); keep private",
        f"listener {conf.service_port} {conf.service_host}",
        "allow_anonymous false",
        f"password_file {d / SERVICE_PASSWORDS}",
        f"acl_file {d / SERVICE_ACL}",
        "",
    ]
    return "\n".join(out)


def write_unit_passwords(conn: Connection, files_dir: Path) -> list[str]:
    """Rewrite ``units.passwd`` alone from the live keys (after a revocation); the unit ids."""
    users = unit_users(conn)
    write_text_atomic(files_dir / UNIT_PASSWORDS, password_text(users), perms=0o600)
    return [u.username for u in users]


def write_broker_files(
    conn: Connection,
    files_dir: Path,
    *,
    service_user: str | None = None,
    service_password: str | None = None,
    conf: BrokerConf | None = None,
    conf_file: Path | None = None,
) -> list[str]:
    """Write every broker file into ``files_dir`` (and the config, if asked); the unit ids."""
    users = unit_users(conn)
    unit_ids = [u.username for u in users]
    service: list[BrokerUser] = []
    if service_user is not None:
        if not service_password:
            raise ValueError("the service user needs a password")
        if service_user in unit_ids:
            raise ValueError(f"service user {service_user!r} clashes with a device id")
        service = [BrokerUser(service_user, mosquitto_hash(service_user, service_password))]
    files_dir.mkdir(parents=True, exist_ok=True)
    text = mosquitto_conf_text(conf or BrokerConf(files_dir)) if conf_file is not None else None
    write_text_atomic(files_dir / UNIT_PASSWORDS, password_text(users), perms=0o600)
    write_text_atomic(
        files_dir / UNIT_DYNSEC, json.dumps(unit_dynsec(unit_ids), indent=1), perms=0o600
    )
    write_text_atomic(files_dir / SERVICE_PASSWORDS, password_text(service), perms=0o600)
    write_text_atomic(files_dir / SERVICE_ACL, service_acl_text(service_user), perms=0o644)
    if conf_file is not None and text is not None:
        write_text_atomic(conf_file, text, perms=0o644)
    return unit_ids
