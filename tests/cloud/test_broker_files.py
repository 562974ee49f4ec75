"""The broker files written from the store: who may log in where, and each unit's rights.

What a real Mosquitto makes of these files is in ``test_broker_hardening.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.broker_files import (
    SERVICE_ACL,
    SERVICE_PASSWORDS,
    UNIT_DYNSEC,
    UNIT_PASSWORDS,
    BrokerConf,
    mosquitto_conf_text,
    write_broker_files,
    write_unit_passwords,
)
from cloud.keys import Role, create_key, mosquitto_verify, revoke_key, split_token
from cloud.store import open_store
from tests.cloud.support import register_unit


def test_files_hold_newest_live_keys_and_per_unit_rights(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", pool_size=2)
    register_unit(store, "unit-1")
    tok2 = register_unit(store, "unit-2")
    tok3 = register_unit(store, "unit-3")
    with store.writer.begin() as conn:
        revoke_key(conn, split_token(tok3))
        newer = create_key(conn, role=Role.UNIT, device_id="unit-1").token  # newest key wins
    d = tmp_path / "broker"
    with store.engine.connect() as conn:
        units = write_broker_files(conn, d, service_user="cloud", service_password="svc-pw")
    assert units == ["unit-1", "unit-2"]
    logins = dict(line.split(":", 1) for line in (d / UNIT_PASSWORDS).read_text().splitlines())
    assert sorted(logins) == ["unit-1", "unit-2"]
    assert mosquitto_verify(newer, logins["unit-1"]) and mosquitto_verify(tok2, logins["unit-2"])
    assert (d / SERVICE_PASSWORDS).read_text().startswith("cloud:$7$")
    assert "topic readwrite shelfsense/#" in (d / SERVICE_ACL).read_text()
    assert (d / UNIT_PASSWORDS).stat().st_mode & 0o077 == 0
    dynsec = json.loads((d / UNIT_DYNSEC).read_text())
    assert dynsec["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert [c["username"] for c in dynsec["clients"]] == ["unit-1", "unit-2"]
    assert all("password" not in c and "clientid" not in c for c in dynsec["clients"])
    role = next(r for r in dynsec["roles"] if r["rolename"] == "unit-unit-2")
    rights = {(a["acltype"], a["topic"]) for a in role["acls"] if a["allow"]}
    assert rights == {
        ("publishClientSend", "shelfsense/unit-2/events"),
        ("publishClientSend", "shelfsense/unit-2/health"),
        ("publishClientSend", "shelfsense/unit-2/reported"),
        ("publishClientSend", "shelfsense/unit-2/status"),
        ("subscribeLiteral", "shelfsense/unit-2/ack"),
        ("subscribeLiteral", "shelfsense/unit-2/desired"),
        ("publishClientReceive", "shelfsense/unit-2/ack"),
        ("publishClientReceive", "shelfsense/unit-2/desired"),
    }
    with store.writer.begin() as conn:
        revoke_key(conn, split_token(tok2))
    with store.engine.connect() as conn:
        assert write_unit_passwords(conn, d) == ["unit-1"]
    assert "unit-2" not in (d / UNIT_PASSWORDS).read_text()
    with store.engine.connect() as conn, pytest.raises(ValueError, match="clashes"):
        write_broker_files(conn, d, service_user="unit-1", service_password="x")
    with store.engine.connect() as conn, pytest.raises(ValueError, match="password"):
        write_broker_files(conn, d, service_user="cloud")
    store.dispose()


def test_config_names_listeners_files_limits_and_persistence(tmp_path: Path) -> None:
    plugin = tmp_path / "mosquitto_dynamic_security.so"
    plugin.touch()
    text = mosquitto_conf_text(
        BrokerConf(tmp_path, dynsec_plugin=plugin, certfile=Path("/etc/c.pem"))
    ).splitlines()
    unit_at, service_at = text.index("listener 1883 0.0.0.0"), text.index("listener 1884 127.0.0.1")
    assert text.index("per_listener_settings true") < unit_at < service_at
    assert "max_queued_messages 0" in text[:unit_at]
    assert "persistence true" in text[:unit_at]
    units, service = text[unit_at:service_at], text[service_at:]
    assert "use_username_as_clientid true" in units
    assert f"password_file {tmp_path.resolve() / UNIT_PASSWORDS}" in units
    assert f"plugin {plugin}" in units
    assert f"plugin_opt_config_file {tmp_path.resolve() / UNIT_DYNSEC}" in units
    assert "certfile /etc/c.pem" in units
    assert "use_username_as_clientid true" not in service
    assert f"password_file {tmp_path.resolve() / SERVICE_PASSWORDS}" in service
    assert f"acl_file {tmp_path.resolve() / SERVICE_ACL}" in service
    assert "allow_anonymous false" in units and "allow_anonymous false" in service
