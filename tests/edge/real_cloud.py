"""The real cloud service for edge sync tests and benches: child processes on loopback.

:func:`real_cloud` migrates a fresh SQLite file, runs ``shelfsense cloud serve`` on a
fixed free loopback port (:class:`cloud.loopback.ServiceProcess`, so it can be killed and
restarted on the same address) and,
given a broker, real :class:`cloud.mqtt_ingest.IngestWorker` processes on the shared
subscription. Units are registered and their keys made straight in the store; what
reached the store is read back with plain ``sqlite3``.

The module is also the entry point of two children::

    python -m tests.edge.real_cloud ingest DB_URL HOST PORT [USER PASSWORD]  # "ready", then SIGTERM
    python -m tests.edge.real_cloud unit DB SEED BASE_URL DEVICE KEY  # prints committed seqs

``unit`` is a busy unit (writing and syncing over HTTP) for ``kill -9`` soaks.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.loopback import (
    ServiceProcess,
    child_env,
    free_port,
    make_key,
    register_unit,
    stop_process,
)
from tests.support.mosquitto import Broker

REPO = Path(__file__).resolve().parents[2]
STORE_ID, BAY_ID = "store-1", "bay-1"


def real_event(i: int, *, when: float | None = None) -> dict[str, Any]:
    """Fields of a plausible decision stamped ``when`` (default: now), inside the cloud's bounds."""
    t = datetime.fromtimestamp(time.time() if when is None else when, UTC)
    return {
        "wall_time": t.isoformat(),
        "mono_time": float(i),
        "store": STORE_ID,
        "bay": BAY_ID,
        "slot": i % 8,
        "sku": f"SKU-{i % 8:06d}",
        "kind": "stock",
        "label": "removal",
        "confidence": 0.9,
        "units": -1,
        "grams": -412.5,
        "stock_units": 10,
        "episode": i,
        "decided_by": "rules",
        "features": {"dwell": 3.5, "n": i},
    }


def _env(**extra: str) -> dict[str, str]:
    return child_env(REPO, **extra)


@dataclass
class RealCloud:
    """A running cloud: its SQLite file, HTTP address, ingest workers and registered units."""

    db: Path
    port: int
    broker: Broker | None = None
    keys: dict[str, str] = field(default_factory=dict)
    service_login: tuple[str, str] | None = None  # the ingest workers' broker login
    service_port: int | None = None  # their listener, when apart from the units'
    env: dict[str, str] = field(default_factory=dict)  # extra SHELFSENSE_CLOUD_* settings
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _api: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the store."""
        return f"sqlite:///{self.db}"

    # processes -----------------------------------------------------------------------

    @property
    def api(self) -> ServiceProcess:
        """The ``shelfsense cloud serve`` child (made on first use, on ``port``)."""
        if self._api is None:
            env = {"SHELFSENSE_CLOUD_RATE_PER_S": "0"} | self.env
            log = self.db.with_suffix(".log")
            self._api = ServiceProcess(self.database_url, log, port=self.port, env=env, cwd=REPO)
        return self._api

    def start(self) -> None:
        """Start (or restart) ``shelfsense cloud serve`` on the same port; wait until it listens."""
        self.api.start()

    def kill(self) -> None:
        """``kill -9`` the API process (a crash mid-request)."""
        self.api.kill()

    def stop(self) -> None:
        """Stop the API process cleanly."""
        self.api.stop()

    def write_broker_files(self, tmp: Path, service: tuple[str, str]) -> tuple[Path, int, int]:
        """The fleet's broker files and ``mosquitto.conf`` for the units registered so far and
        the ingest service user; returns the config and its unit and service ports (loopback).
        """
        from cloud.broker_files import BrokerConf, write_broker_files
        from cloud.store import open_store

        unit_port, service_port = free_port(), free_port()
        conf = BrokerConf(
            tmp / "broker",
            unit_host="127.0.0.1",
            unit_port=unit_port,
            service_port=service_port,
            persistence_dir=None,
        )
        conf_file = tmp / "mosquitto-fleet.conf"
        store = open_store(self.database_url, pool_size=1)
        try:
            with store.engine.connect() as conn:
                write_broker_files(
                    conn,
                    conf.files_dir,
                    service_user=service[0],
                    service_password=service[1],
                    conf=conf,
                    conf_file=conf_file,
                )
        finally:
            store.dispose()
        self.service_login = service
        self.service_port = service_port
        if os.geteuid() == 0:  # as root, mosquitto drops to a user who cannot read tmp files
            conf_file.write_text("user root\n" + conf_file.read_text())
        return conf_file, unit_port, service_port

    def start_ingest(self, n: int = 2) -> None:
        """Start ``n`` MQTT ingest workers on the shared subscription; wait until subscribed."""
        assert self.broker is not None, "no broker"
        procs = []
        for _ in range(n):
            args = [sys.executable, "-m", "tests.edge.real_cloud", "ingest", self.database_url]
            args += [self.broker.host, str(self.service_port or self.broker.port)]
            if self.service_login is not None:
                args += list(self.service_login)
            procs.append(
                subprocess.Popen(
                    args, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                )
            )
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"ingest worker did not start: {line!r}")
        self.workers += procs

    def stop_ingest(self) -> None:
        """Stop every ingest worker."""
        for p in self.workers:
            stop_process(p)
        self.workers.clear()

    # units ---------------------------------------------------------------------------

    def register(
        self,
        device_id: str,
        *,
        store_id: str = STORE_ID,
        bay_id: str = BAY_ID,
        slots: Iterable[tuple[int, str, float]] = (),
    ) -> str:
        """Register ``device_id`` in ``store_id``/``bay_id`` (default store-1/bay-1), with the
        bay's ``slots`` as (slot, sku, unit grams), and return a fresh unit key."""
        from cloud import fleet
        from cloud.schemas import SlotCreate
        from cloud.store import open_store

        store = open_store(self.database_url, pool_size=1)
        try:
            key = register_unit(store, device_id, store_id, bay_id)
            with store.writer.begin() as conn:
                for slot, sku, grams in slots:
                    body = SlotCreate(slot=slot, sku=sku, unit_grams=grams)
                    fleet.add_slot(conn, store_id, bay_id, body)
        finally:
            store.dispose()
        self.keys[device_id] = key
        return key

    def put_desired(self, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT ``body`` as ``device_id``'s desired state, as an operator; the stored document."""
        import httpx

        from cloud.keys import Role
        from cloud.store import open_store

        store = open_store(self.database_url, pool_size=1)
        try:
            operator = make_key(store, Role.OPERATOR)
        finally:
            store.dispose()
        r = httpx.put(
            f"{self.url}/v1/devices/{device_id}/desired",
            json=body,
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    # what the store holds ------------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def rows(self, device_id: str) -> list[dict[str, Any]]:
        """The device's stored events in feed (arrival) order: seq, mono_time, historical."""
        got = self._query(
            "SELECT seq, mono_time, historical FROM events WHERE device_id = ? ORDER BY id",
            (device_id,),
        )
        return [{"seq": s, "mono_time": m, "historical": bool(h)} for s, m, h in got]

    def seqs(self, device_id: str) -> list[int]:
        """The device's stored seqs, ascending (a duplicate would show twice)."""
        return sorted(r["seq"] for r in self.rows(device_id))

    def count(self, device_id: str) -> int:
        """How many events of the device are stored."""
        return int(
            self._query("SELECT count(*) FROM events WHERE device_id = ?", (device_id,))[0][0]
        )

    def highest_contiguous(self, device_id: str) -> int:
        """The cloud's highest contiguous stored seq of the device."""
        got = self._query(
            "SELECT highest_contiguous FROM device_progress WHERE device_id = ?", (device_id,)
        )
        return int(got[0][0]) if got else 0


@contextmanager
def real_cloud(
    tmp: Path, *, broker: Broker | None = None, ingest_workers: int = 2, start: bool = True
) -> Iterator[RealCloud]:
    """A fresh store in ``tmp``, the API on a free loopback port (unless ``start`` is False)
    and, with a broker, ``ingest_workers`` MQTT ingest workers; all stopped on exit."""
    from cloud.store import open_store

    db = tmp / f"cloud-{time.monotonic_ns()}.db"
    open_store(f"sqlite:///{db}", pool_size=1).dispose()  # migrate once, before any process
    cloud = RealCloud(db=db, port=free_port(), broker=broker)
    try:
        if start:
            cloud.start()
        if broker is not None and ingest_workers:
            cloud.start_ingest(ingest_workers)
        yield cloud
    finally:
        cloud.stop_ingest()
        cloud.stop()


# -- children -------------------------------------------------------------------------


def _ingest_main(
    database_url: str, host: str, port: int, username: str | None, password: str | None
) -> None:
    """One real MQTT ingest worker; prints ``ready`` once subscribed, stops on SIGTERM."""
    from cloud.checks import TimeBounds
    from cloud.mqtt_ingest import IngestWorker
    from cloud.settings import build_settings
    from cloud.store import open_store

    settings = build_settings(database_url=database_url)
    store = open_store(database_url, pool_size=2, run_migrations=False)
    worker = IngestWorker(
        store,
        host=host,
        port=port,
        bounds=TimeBounds.of(settings.max_future_s, settings.max_past_days),
        username=username,
        password=password,
        batch_max=settings.mqtt_batch_max,
        batch_wait_s=settings.mqtt_batch_wait_s,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    worker.start()
    if not worker.ready.wait(20):
        sys.exit("not subscribed")
    print("ready", flush=True)
    with suppress(KeyboardInterrupt):
        done.wait()
    worker.stop()
    store.dispose()


def _unit_main(db: Path, seed: int, base_url: str, device_id: str, key: str) -> None:
    """Append events in small random batches forever while syncing; print committed seqs."""
    from edge.buffer import Buffer
    from edge.sync.config import SyncConfig
    from edge.sync.http import HttpTransport
    from edge.sync.identity import Identity
    from edge.sync.worker import SyncWorker

    rng = random.Random(seed)
    buf = Buffer(db, device_id=device_id)
    cfg = SyncConfig(mode="http", base_url=base_url, batch_size=50, idle_s=0.01)
    ident = Identity(device_id=device_id, api_key=key)
    worker = SyncWorker(buf, [HttpTransport(base_url, ident)], config=cfg)
    threading.Thread(target=worker.run, args=(threading.Event(),), daemon=True).start()
    i = buf.seq
    out = sys.stdout
    while True:
        n = rng.randint(1, 5)
        events = buf.append_many([real_event(i + k) for k in range(n)])
        i += n
        out.write("".join(f"{e.seq}\n" for e in events))
        out.flush()
        time.sleep(rng.random() * 0.004)


def main(argv: list[str]) -> None:
    """Dispatch to a child: ``ingest`` or ``unit``."""
    if argv[0] == "ingest":
        login = argv[4:6] if len(argv) >= 6 else [None, None]
        _ingest_main(argv[1], argv[2], int(argv[3]), login[0], login[1])
    elif argv[0] == "unit":
        _unit_main(Path(argv[1]), int(argv[2]), argv[3], argv[4], argv[5])
    else:
        sys.exit(f"unknown child {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
