"""``shelfsense fleet keys | stores | devices …``: API keys, stores, bays, slots and units.

Fleet commands work on the database directly (the operator runs them where the service
runs); the same is possible over HTTP with an operator key. Only the standard library is
imported at the top; each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cloud.cli_common import SubParsers, db_args, open_store_of, print_json


def register(fleet_sub: SubParsers) -> None:
    """Add ``keys``, ``stores`` and ``devices`` to the ``fleet`` subcommands."""
    _register_keys(fleet_sub)
    _register_fleet(fleet_sub)


def _register_keys(fleet_sub: SubParsers) -> None:
    keys = fleet_sub.add_parser("keys", help="API keys")
    ks = keys.add_subparsers(dest="keys_command", metavar="KEYSCOMMAND", required=True)
    p = ks.add_parser("create", help="make a key and print its token (shown once)")
    db_args(p)
    p.add_argument("--role", choices=["unit", "backend", "operator"], required=True)
    p.add_argument("--device", default=None, help="device id (unit keys)")
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_keys_create)
    p = ks.add_parser("list", help="list keys")
    db_args(p)
    p.add_argument("--all", action="store_true", help="revoked keys too")
    p.set_defaults(func=cmd_keys_list)
    p = ks.add_parser("revoke", help="revoke a key")
    db_args(p)
    p.add_argument("key_id")
    p.add_argument(
        "--broker-dir",
        type=Path,
        default=None,
        help="rewrite the units' broker password file in this folder (see broker-files)",
    )
    p.add_argument(
        "--broker-pid", type=int, default=None, help="then send SIGHUP to this Mosquitto"
    )
    p.set_defaults(func=cmd_keys_revoke)
    from cloud import signing_cli  # standard library only at import

    signing_cli.register(ks)


def _register_fleet(fleet_sub: SubParsers) -> None:
    stores = fleet_sub.add_parser("stores", help="stores, bays and slots")
    ss = stores.add_subparsers(dest="stores_command", metavar="STORESCOMMAND", required=True)
    p = ss.add_parser("add", help="register a store")
    db_args(p)
    p.add_argument("store_id")
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_store_add)
    p = ss.add_parser("list", help="list stores")
    db_args(p)
    p.set_defaults(func=cmd_store_list)
    p = ss.add_parser("add-bay", help="register a bay of a store")
    db_args(p)
    p.add_argument("store_id")
    p.add_argument("bay_id")
    p.set_defaults(func=cmd_bay_add)
    p = ss.add_parser("add-slot", help="register a slot: SKU and unit weight")
    db_args(p)
    p.add_argument("store_id")
    p.add_argument("bay_id")
    p.add_argument("slot", type=int)
    p.add_argument("--sku", required=True)
    p.add_argument("--unit-grams", type=float, required=True)
    p.set_defaults(func=cmd_slot_add)

    devices = fleet_sub.add_parser("devices", help="units")
    ds = devices.add_subparsers(dest="devices_command", metavar="DEVICESCOMMAND", required=True)
    p = ds.add_parser("add", help="register a unit on a bay (and make its key)")
    db_args(p)
    p.add_argument("device_id")
    p.add_argument("--store", required=True)
    p.add_argument("--bay", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--key", action="store_true", help="also make a unit key and print it")
    p.set_defaults(func=cmd_device_add)
    p = ds.add_parser(
        "list", help="the fleet: online, versions, outbox, last sync, parts down, alarms"
    )
    db_args(p)
    p.add_argument("--store", default=None, help="units of this store only")
    p.add_argument("--json", action="store_true", help="JSON (as GET /v1/devices) not a table")
    p.set_defaults(func=cmd_device_list)
    p = ds.add_parser("alarms", help="alarms units raised, newest first, with when they cleared")
    db_args(p)
    p.add_argument("--device", default=None, help="this unit's only")
    p.add_argument("--store", default=None, help="this store's units only")
    p.add_argument("--active", action="store_true", help="only alarms raised now")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON (as GET /v1/alarms) not a table")
    p.set_defaults(func=cmd_device_alarms)
    p = ds.add_parser(
        "broker-files", help="write the Mosquitto password, ACL and plugin files (and config)"
    )
    db_args(p)
    p.add_argument("--dir", type=Path, required=True, help="folder for the broker files")
    p.add_argument("--conf", type=Path, default=None, help="also write mosquitto.conf here")
    p.add_argument("--service-user", default=None, help="broker user of the ingest workers")
    p.add_argument(
        "--service-password-env",
        default="SHELFSENSE_BROKER_SERVICE_PASSWORD",
        help="environment variable holding the service user's password",
    )
    p.add_argument("--unit-listener", default="0.0.0.0:1883", help="HOST:PORT units reach")
    p.add_argument(
        "--service-listener", default="127.0.0.1:1884", help="HOST:PORT of the cloud (private)"
    )
    p.add_argument("--max-queued-messages", type=int, default=0, help="0: no limit")
    p.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    p.add_argument("--dynsec-plugin", type=Path, default=None, help="mosquitto_dynamic_security.so")
    p.add_argument("--cafile", type=Path, default=None, help="TLS on the unit listener")
    p.add_argument("--certfile", type=Path, default=None)
    p.add_argument("--keyfile", type=Path, default=None)
    p.set_defaults(func=cmd_broker_files)


def cmd_keys_create(args: argparse.Namespace) -> int:
    """Make a key; prints its token once."""
    from cloud import fleet
    from cloud.keys import Role, create_key

    store = open_store_of(args)
    with store.writer.begin() as conn:
        if args.device is not None:
            fleet.get_device(conn, args.device)
        made = create_key(conn, role=Role(args.role), name=args.name, device_id=args.device)
    print_json(
        {
            "key_id": made.key.key_id,
            "role": args.role,
            "device_id": args.device,
            "token": made.token,
        }
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    """List keys."""
    from dataclasses import asdict

    from cloud.keys import list_keys

    with open_store_of(args).engine.connect() as conn:
        print_json([asdict(k) for k in list_keys(conn, include_revoked=args.all)])
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key."""
    from cloud.keys import revoke_key

    with open_store_of(args).writer.begin() as conn:
        key = revoke_key(conn, args.key_id)
    print(f"revoked {key.key_id} at {key.revoked_at}")
    if args.broker_dir is not None:
        from cloud.broker_files import write_unit_passwords

        with open_store_of(args).engine.connect() as conn:
            write_unit_passwords(conn, args.broker_dir)
        print(f"rewrote the unit logins in {args.broker_dir}")
        if args.broker_pid is not None:
            # Mosquitto rereads its password files on SIGHUP and drops clients left out.
            os.kill(args.broker_pid, signal.SIGHUP)
            print(f"sent SIGHUP to the broker (pid {args.broker_pid})")
    return 0


def cmd_store_add(args: argparse.Namespace) -> int:
    """Register a store."""
    from cloud import fleet
    from cloud.schemas import StoreCreate

    with open_store_of(args).writer.begin() as conn:
        print_json(
            fleet.add_store(conn, StoreCreate(store_id=args.store_id, name=args.name)).model_dump()
        )
    return 0


def cmd_store_list(args: argparse.Namespace) -> int:
    """List stores."""
    from cloud import fleet

    with open_store_of(args).engine.connect() as conn:
        print_json([s.model_dump() for s in fleet.list_stores(conn)])
    return 0


def cmd_bay_add(args: argparse.Namespace) -> int:
    """Register a bay."""
    from cloud import fleet
    from cloud.schemas import BayCreate

    with open_store_of(args).writer.begin() as conn:
        print_json(
            fleet.add_bay(conn, args.store_id, BayCreate(bay_id=args.bay_id, name="")).model_dump()
        )
    return 0


def cmd_slot_add(args: argparse.Namespace) -> int:
    """Register a slot."""
    from cloud import fleet
    from cloud.schemas import SlotCreate

    body = SlotCreate(slot=args.slot, sku=args.sku, unit_grams=args.unit_grams)
    with open_store_of(args).writer.begin() as conn:
        print_json(fleet.add_slot(conn, args.store_id, args.bay_id, body).model_dump())
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    """Register a unit, optionally with a key."""
    from cloud import fleet
    from cloud.keys import Role, create_key
    from cloud.schemas import DeviceCreate

    body = DeviceCreate(
        device_id=args.device_id, store_id=args.store, bay_id=args.bay, name=args.name
    )
    with open_store_of(args).writer.begin() as conn:
        out: dict[str, Any] = fleet.add_device(conn, body).model_dump()
        if args.key:
            made = create_key(conn, role=Role.UNIT, name=args.name, device_id=args.device_id)
            out["key_id"], out["token"] = made.key.key_id, made.token
    print_json(out)
    return 0


def cmd_device_list(args: argparse.Namespace) -> int:
    """List units with their state, as a table (or JSON)."""
    from datetime import UTC, datetime

    from cloud import fleet_views
    from cloud.fleet_table import device_table

    now = datetime.now(UTC)
    with open_store_of(args).engine.connect() as conn:
        states = fleet_views.device_states(conn, store_id=args.store, now=now)
    if args.json:
        print_json([d.model_dump(mode="json") for d in states])
    else:
        print(device_table(states, now))
    return 0


def cmd_device_alarms(args: argparse.Namespace) -> int:
    """List alarms with their history, as a table (or JSON)."""
    from datetime import UTC, datetime

    from cloud import fleet_views
    from cloud.fleet_table import alarm_table

    if not 1 <= args.limit <= fleet_views.MAX_ALARMS_LISTED:
        print(f"--limit must be 1..{fleet_views.MAX_ALARMS_LISTED}", file=sys.stderr)
        return 2
    with open_store_of(args).engine.connect() as conn:
        found = fleet_views.list_alarms(
            conn,
            device_id=args.device,
            store_id=args.store,
            active=True if args.active else None,
            limit=args.limit,
        )
    if args.json:
        print_json([a.model_dump(mode="json") for a in found])
    else:
        print(alarm_table(found, datetime.now(UTC)))
    return 0


def _listener(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def cmd_broker_files(args: argparse.Namespace) -> int:
    """Write the Mosquitto files (and config) for the fleet's units and the service user."""
    from cloud.broker_files import BrokerConf, write_broker_files

    password = os.environ.get(args.service_password_env) if args.service_user else None
    if args.service_user and not password:
        print(f"set {args.service_password_env} to the service user's password", file=sys.stderr)
        return 2
    unit_host, unit_port = _listener(args.unit_listener)
    service_host, service_port = _listener(args.service_listener)
    conf = BrokerConf(
        files_dir=args.dir,
        unit_host=unit_host,
        unit_port=unit_port,
        service_host=service_host,
        service_port=service_port,
        max_queued_messages=args.max_queued_messages,
        persistence_dir=args.persistence_dir,
        dynsec_plugin=args.dynsec_plugin,
        cafile=args.cafile,
        certfile=args.certfile,
        keyfile=args.keyfile,
    )
    with open_store_of(args).engine.connect() as conn:
        units = write_broker_files(
            conn,
            args.dir,
            service_user=args.service_user,
            service_password=password,
            conf=conf,
            conf_file=args.conf,
        )
    print(
        f"{len(units)} units written to {args.dir}" + (f", config {args.conf}" if args.conf else "")
    )
    return 0
