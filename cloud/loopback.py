"""The cloud service on a loopback port, for the demo, tests and benches: one way to start it.

Two shapes, both the real app on a real SQLite (or PostgreSQL) store:

- :func:`serve_in_thread`: the app under uvicorn in a thread of this process (the demo,
  HTTP tests that look into the store while it runs);
- :class:`ServiceProcess`: ``shelfsense cloud serve`` as a child process on a fixed port,
  so a test can stop it, ``kill -9`` it and start it again on the same address.

:func:`register_unit` and :func:`make_key` put a unit (with its store and bay) and keys
straight into the store, as ``shelfsense fleet`` would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

    from cloud.keys import Role
    from cloud.settings import CloudSettings
    from cloud.store import Store

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def make_key(store: Store, role: Role, device_id: str | None = None, *, name: str = "") -> str:
    """A fresh token of ``role`` (a unit key names its ``device_id``)."""
    from cloud.keys import create_key

    with store.writer.begin() as conn:
        label = name or f"test-{role.value}"
        return create_key(conn, role=role, name=label, device_id=device_id).token


def register_unit(
    store: Store,
    device_id: str,
    store_id: str = "store-1",
    bay: str = "bay-1",
    *,
    store_name: str = "",
    bay_name: str = "",
    key_name: str = "",
) -> str:
    """Register a store, bay (each only if new) and the unit ``device_id``; a unit key for it."""
    from cloud import fleet
    from cloud.errors import ConflictError
    from cloud.keys import Role
    from cloud.schemas import BayCreate, DeviceCreate, StoreCreate

    with store.writer.begin() as conn:
        with suppress(ConflictError):
            fleet.add_store(conn, StoreCreate(store_id=store_id, name=store_name))
        with suppress(ConflictError):
            fleet.add_bay(conn, store_id, BayCreate(bay_id=bay, name=bay_name))
        fleet.add_device(
            conn, DeviceCreate(device_id=device_id, store_id=store_id, bay_id=bay, name="")
        )
    return make_key(store, Role.UNIT, device_id, name=key_name)


@dataclass
class Served:
    """The app running in this process: its base URL, store and uvicorn server."""

    url: str
    store: Store
    server: uvicorn.Server


@contextmanager
def serve_in_thread(
    settings: CloudSettings, *, store: Store | None = None, mqtt: bool = False
) -> Iterator[Served]:
    """The app for ``settings`` under uvicorn in a thread on a free loopback port; the store
    (opened from ``settings`` unless given, and then disposed of on exit) stays open while
    it runs."""
    import uvicorn

    from cloud.api.app import create_app
    from cloud.store import open_store

    own = store is None
    if store is None:
        store = open_store(
            settings.database_url,
            pool_size=settings.db_pool_size,
            write_pool_size=settings.db_write_pool_size,
        )
    app = create_app(settings, store=store, mqtt=mqtt)
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the cloud service did not start on {HOST}:{port}")
        started.wait(0.02)
    try:
        yield Served(f"http://{HOST}:{port}", store, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if own:
            store.dispose()


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0
) -> None:
    """Block until ``127.0.0.1:port`` accepts a connection; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the cloud service exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            idle.wait(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` and wait; a process that does not stop in 10 s is killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def child_env(repo: Path, **extra: str) -> dict[str, str]:
    """This environment without ``SHELFSENSE_CLOUD_*`` settings, ``repo`` importable, plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFSENSE_CLOUD_")}
    return {**env, "PYTHONPATH": str(repo), "ORT_DISABLE_TELEMETRY": "1", **extra}


@dataclass
class ServiceProcess:
    """``shelfsense cloud serve`` for ``database_url`` as a child on a fixed loopback port.

    :meth:`start` (again after :meth:`stop` or :meth:`kill`) listens on the same port;
    stderr is appended to ``log``; ``env`` adds ``SHELFSENSE_CLOUD_*`` settings and
    ``args`` more ``serve`` options (``--ingest-processes 2``).
    """

    database_url: str
    log: Path
    port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    cwd: Path = Path(__file__).resolve().parents[1]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the child process lives."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        """Process id of the service (it must have been started)."""
        if self.proc is None:
            raise RuntimeError("the cloud service was never started")
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start the service (unless it runs) and wait until it listens."""
        if self.running:
            return
        args = [sys.executable, "-m", "shelfsense", "cloud", "serve"]
        args += ["--database-url", self.database_url, "--host", HOST, "--port", str(self.port)]
        args += list(self.args)
        env = child_env(self.cwd, **dict(self.env))
        with self.log.open("ab") as log:  # a pipe could fill and block it
            self.proc = subprocess.Popen(
                args, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        wait_for_port(self.port, self.proc, timeout=timeout)

    def stop(self) -> None:
        """Stop the service cleanly (SIGTERM)."""
        if self.proc is not None:
            stop_process(self.proc)

    def kill(self) -> None:
        """``kill -9`` the service (a crash mid-request)."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)
