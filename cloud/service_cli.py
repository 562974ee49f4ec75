"""``shelfsense cloud serve | migrate | mqtt-ingest | export-labels``: run the service.

Only the standard library is imported at the top; each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from cloud.cli_common import SubParsers, db_args, open_store_of, settings_of


def register(cloud_sub: SubParsers) -> None:
    """Add the service commands to the ``cloud`` subcommands."""
    p = cloud_sub.add_parser("serve", help="run the HTTP API (and optionally MQTT ingest)")
    db_args(p)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument(
        "--ingest-processes",
        type=int,
        default=None,
        metavar="N",
        help="store ingest batches in N processes of their own per worker (at lower priority)",
    )
    p.add_argument("--mqtt", action="store_true", help="also run an MQTT ingest worker")
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn)")
    p.set_defaults(func=cmd_serve)
    p = cloud_sub.add_parser("migrate", help="bring the database schema to the newest version")
    db_args(p)
    p.set_defaults(func=cmd_migrate)
    p = cloud_sub.add_parser("mqtt-ingest", help="run one MQTT ingest worker (shared subscription)")
    db_args(p)
    p.set_defaults(func=cmd_mqtt_ingest)
    p = cloud_sub.add_parser("export-labels", help="write the training JSONL export")
    db_args(p)
    p.add_argument("out", type=Path)
    p.add_argument("--all", action="store_true", help="unlabelled events (or windows) too")
    p.add_argument(
        "--windows",
        action="store_true",
        help="labelled windows in the models.dataset format (what `cloud train` reads)",
    )
    p.set_defaults(func=cmd_export)


def serve_log_config(json_flag: bool = False) -> dict[str, Any]:
    """uvicorn's logging, at info for the server and the cloud's own loggers.

    Under systemd every line carries its journald priority; with ``json_flag`` (or
    ``SHELFSENSE_LOG_JSON=1``) lines are JSON objects (see :mod:`shelfsense.logs`).

    Info level shows what an operator must see: where it listens, workers started, a
    worker that died and was replaced, shutdowns. Per-request access lines only with
    ``--access-log`` (at a fleet's rate they would drown everything else).
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    from models import logs

    cfg = copy.deepcopy(LOGGING_CONFIG)
    journald, json_lines = logs.under_journald(), logs.json_wanted(json_flag)
    if journald or json_lines:  # journald priorities, JSON lines: our formatter for every line
        ours = logs.formatter_config(json_lines=json_lines, journald=journald)
        cfg["formatters"] = {"default": ours, "access": dict(ours)}
    cfg["loggers"]["uvicorn.error"]["level"] = "INFO"
    cfg["loggers"]["cloud"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return cfg


def cmd_serve(args: argparse.Namespace) -> int:
    """Run uvicorn on the app (migrating first)."""
    import logging.config

    import uvicorn

    from cloud.api.app import CONFIG_ENV, create_app
    from cloud.heap import settle_for_serving
    from cloud.store.engine import make_engine, migrate

    settings = settings_of(args)
    if args.host:
        settings = settings.model_copy(update={"host": args.host})
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    if args.ingest_processes is not None:
        settings = settings.model_copy(update={"ingest_processes": args.ingest_processes})
    engine = make_engine(settings.database_url, pool_size=1)
    migrate(engine)
    dialect = engine.dialect.name
    engine.dispose()
    log_config = serve_log_config(getattr(args, "log_json", False))
    logging.config.dictConfig(log_config)
    logging.getLogger("cloud").info(
        "shelfsense cloud listening on http://%s:%d (%s database, MQTT ingest %s); serving on "
        "%d worker(s), per worker %d read + %d write connections, %d ingest slots, queue %d, "
        "%d ingest processes, %d requests may wait for a database slot",
        settings.host,
        settings.port,
        dialect,
        "on" if args.mqtt and settings.mqtt_host and args.workers == 1 else "off",
        args.workers,
        settings.db_pool_size,
        settings.db_write_pool_size,
        settings.ingest_slots,
        settings.ingest_queue,
        settings.ingest_processes,
        settings.read_queue,
    )
    run: dict[str, Any] = {
        "log_config": log_config,
        "log_level": "info",
        "access_log": args.access_log,
    }
    if args.workers > 1:
        if args.config:
            os.environ[CONFIG_ENV] = str(args.config)
        if args.database_url:
            os.environ["SHELFSENSE_CLOUD_DATABASE_URL"] = args.database_url
        if args.ingest_processes is not None:
            os.environ["SHELFSENSE_CLOUD_INGEST_PROCESSES"] = str(args.ingest_processes)
        uvicorn.run(
            "cloud.api.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            **run,
        )
        return 0
    app = create_app(settings, mqtt=args.mqtt)
    settle_for_serving()
    uvicorn.run(app, host=settings.host, port=settings.port, **run)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the schema to head."""
    from cloud.store.engine import make_engine, migrate

    engine = make_engine(settings_of(args).database_url, pool_size=1)
    migrate(engine)
    engine.dispose()
    print("schema at head")
    return 0


def cmd_mqtt_ingest(args: argparse.Namespace) -> int:
    """Run one MQTT ingest worker and one fleet state worker until interrupted."""
    import threading

    from cloud.fleet_ingest import FleetStateWorker
    from cloud.heap import settle_for_serving
    from cloud.mqtt_ingest import IngestWorker
    from cloud.store import open_store

    settings = settings_of(args)
    store = open_store(settings.database_url, pool_size=2)
    worker = IngestWorker.from_settings(settings, store)
    fleet_worker = FleetStateWorker.from_settings(settings, store)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    worker.start()
    fleet_worker.start()
    settle_for_serving()
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    fleet_worker.stop()
    worker.stop()
    store.dispose()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the JSONL export of events and labels (or of labelled windows)."""
    from cloud.labels import SaleWindow, write_export

    store = open_store_of(args)
    window = SaleWindow.of(settings_of(args))
    if args.windows:
        from cloud.training_data import write_windows

        n = write_windows(store, args.out, window=window, labeled_only=not args.all)
    else:
        n = write_export(store, args.out, window=window, labeled_only=not args.all)
    print(f"{n} lines written to {args.out}")
    return 0
