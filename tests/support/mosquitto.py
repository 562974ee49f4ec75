"""Start a real Mosquitto broker on a free loopback port for one test (or module)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Path of the mosquitto executable, if installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass
class Broker:
    """A running broker: where it listens and how to stop and restart it."""

    host: str
    port: int
    conf: Path
    proc: subprocess.Popen[bytes]
    more_ports: tuple[int, ...] = ()
    log: Path | None = None

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def start(self) -> None:
        """(Re)start the broker on the same port and wait until it accepts connections."""
        self.proc = spawn(self.conf, self.log)
        try:
            for port in (self.port, *self.more_ports):
                wait_for_port(self.host, port, self.proc)
        except Exception:
            self.stop()
            raise


def spawn(conf: Path, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``mosquitto -c conf``; stderr to ``log`` (a file never blocks a chatty broker)."""
    binary = mosquitto_binary()
    assert binary is not None
    if log is None:
        return subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    with log.open("ab") as err:
        return subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err)


def wait_for_port(
    host: str, port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0
) -> None:
    """Block until ``host:port`` accepts a TCP connection (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@contextmanager
def run_mosquitto(tmp: Path, *, extra_conf: str = "") -> Iterator[Broker]:
    """A fresh Mosquitto on a free loopback port, stopped on exit.

    ``max_queued_messages 0`` (no limit) so QoS 1 messages to a slow subscriber
    are never silently dropped.
    """
    port = free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\n" + extra_conf
    )
    binary = mosquitto_binary()
    assert binary is not None
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    broker = Broker("127.0.0.1", port, conf, proc)
    try:
        wait_for_port(broker.host, port, proc)
        yield broker
    finally:
        broker.stop()


@contextmanager
def run_mosquitto_conf(conf: Path, port: int, *more_ports: int, log: Path) -> Iterator[Broker]:
    """Mosquitto with a config written elsewhere, on loopback ``port`` (and more), logging to ``log``."""
    broker = Broker("127.0.0.1", port, conf, spawn(conf, log), more_ports, log)
    try:
        for p in (port, *more_ports):
            wait_for_port(broker.host, p, broker.proc)
        yield broker
    finally:
        broker.stop()
