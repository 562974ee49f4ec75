"""The agent process: workers on threads, clean shutdown on SIGTERM, sd_notify for systemd.

:class:`Agent` owns the buffer, the health object and the sync, desired-state, OTA,
calibration-report and health workers. Producers plug in through the seam :meth:`Agent.add_worker`: a
weight, camera or decision worker is any callable ``run(stop: threading.Event)``
that hands its events to :meth:`Agent.emit` (which commits them to the buffer before
anything can send them) and reports component state on ``agent.health``.

Under systemd (``Type=notify``, ``WatchdogSec=``), :class:`SdNotify` sends
``READY=1`` once every worker started, ``WATCHDOG=1`` at half the watchdog period
while every worker thread is alive, and ``STOPPING=1`` on shutdown, over the plain
datagram socket named by ``$NOTIFY_SOCKET``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from edge.buffer.store import Buffer
from edge.calibration_report import CalibrationReporter, http_sender
from edge.config import Config
from edge.desired import DesiredPoller, DesiredStateHandler
from edge.health import Health, health_payload, write_status
from edge.memory import trim
from edge.metrics_file import TEXTFILE, write_textfile
from edge.metrics_file import render as render_metrics
from edge.ota.build import build_ota
from edge.sync.config import SyncConfig
from edge.sync.endpoints import TOPIC_HEALTH
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity, load_identity
from edge.sync.mqtt import MqttTransport
from edge.sync.transport import SyncRejected, SyncUnavailable, Transport
from edge.sync.worker import SyncWorker
from models.wire import ShelfEvent

log = logging.getLogger(__name__)

WorkerFn = Callable[[threading.Event], None]


class SdNotify:
    """systemd's notify protocol over ``$NOTIFY_SOCKET`` (a no-op when not under systemd)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ok_pid = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and ok_pid else None

    def notify(self, message: str) -> bool:
        """Send one state line (``READY=1``, ``WATCHDOG=1``, …); True when sent."""
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(addr)
                s.sendall(message.encode())
            return True
        except OSError as err:
            log.debug("sd_notify failed: %s", err)
            return False


@dataclass
class _Running:
    name: str
    fn: WorkerFn
    thread: threading.Thread | None = field(default=None)


def build_transports(
    sync: SyncConfig,
    identity: Identity,
    *,
    on_ack: Callable[[bytes], object],
    on_desired: Callable[[bytes], object] | None = None,
    on_link: Callable[[bool], None] | None = None,
) -> tuple[list[Transport], MqttTransport | None, HttpTransport | None]:
    """The transports ``sync.mode`` asks for: MQTT first (when connected), then HTTP.

    The MQTT client starts connecting at once, so its callbacks are wired here.
    """
    mqtt_t = http_t = None
    if sync.mode in ("mqtt", "both"):
        mqtt_t = MqttTransport(
            sync.mqtt_host,
            sync.mqtt_port,
            identity,
            tls=sync.tls,
            keepalive_s=sync.keepalive_s,
            reconnect_max_s=sync.backoff_max_s,
            on_ack=on_ack,
            on_desired=on_desired or (lambda _: None),
            on_link=on_link,
        )
    if sync.mode in ("http", "both"):
        http_t = HttpTransport(sync.base_url, identity, timeout_s=sync.http_timeout_s)
    transports: list[Transport] = [t for t in (mqtt_t, http_t) if t is not None]
    return transports, mqtt_t, http_t


class Agent:
    """One unit's agent: buffer, health, sync/desired/health workers, plus plugged-in workers."""

    def __init__(
        self,
        config: Config,
        *,
        identity: Identity | None = None,
        health: Health | None = None,
        buffer: Buffer | None = None,
        notifier: SdNotify | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.data_dir = Path(config.unit.data_dir)
        self.health = health or Health(clock=clock)
        self._health_refusal = ""  # the last refusal of a health report, said once
        self.buffer = buffer or Buffer(
            self.data_dir / config.buffer.file,
            device_id=config.unit.device_id,
            config=config.buffer,
            health=self.health,
            clock=clock,
        )
        self.notifier = notifier or SdNotify()
        self.stop_event = threading.Event()
        self._finish_by: float | None = None  # set when the work is done (a finished sim)
        self.model_hooks: list[Callable[[int], None]] = []
        self.config_hooks: list[Callable[[Config], None]] = []
        self._workers: list[_Running] = []
        self.desired = DesiredStateHandler(
            config, health=self.health, on_config=self._apply_config, on_model=self._new_model
        )
        self.sync: SyncWorker | None = None
        self.mqtt: MqttTransport | None = None
        self.http: HttpTransport | None = None
        if config.sync.mode != "off":
            ident = identity or load_identity(self.data_dir / config.sync.identity_file)
            if ident.device_id != config.unit.device_id:
                raise ValueError(
                    f"identity is for {ident.device_id!r}, config for {config.unit.device_id!r}"
                )
            transports, self.mqtt, http_t = build_transports(
                config.sync,
                ident,
                on_ack=self._ack,
                on_desired=lambda p: self.desired.handle(p, source="mqtt"),
                on_link=self._link,
            )
            self.sync = SyncWorker(
                self.buffer, transports, config=config.sync, health=self.health, clock=clock
            )
            self.http = http_t
            self.add_worker("sync", self.sync.run)
            # Desired state: the retained MQTT message when on a broker, and the HTTP
            # poll whenever there is an HTTP transport ("both" gets it either way).
            if http_t is not None:
                poller = DesiredPoller(
                    http_t.get_desired, self.desired, interval_s=config.sync.desired_poll_s
                )
                self.add_worker("desired", poller.run)
            self.add_worker("calibration_report", self._calibration_reporter(ident).run)
        self.ota = build_ota(config, self.health, http=self.http, mqtt=self.mqtt)
        if self.ota is not None:
            ota = self.ota
            self.model_hooks.append(lambda v: ota.want(v, *self.desired.shadow))
            self.add_worker("ota", self.ota.run)
        self.add_worker("health", self._health_loop)

    def _calibration_reporter(self, ident: Identity) -> CalibrationReporter:
        """Sends the calibration staff made (while offline too) until the cloud has it."""
        session = requests.Session()
        if ident.client_cert:
            session.cert = (
                (ident.client_cert, ident.client_key) if ident.client_key else ident.client_cert
            )
        send = http_sender(
            self.config.sync.base_url,
            ident.device_id,
            ident.api_key,
            verify=ident.ca_file or True,
            timeout_s=self.config.sync.http_timeout_s,
            session=session,
        )

        def counted(ok: bool) -> None:
            self.health.count("calibration_reports" if ok else "calibration_report_failures")

        return CalibrationReporter(self.data_dir, send, on_result=counted)

    def _ack(self, payload: bytes) -> None:
        if self.sync is not None:  # the broker may deliver before the worker exists
            self.sync.handle_mqtt_ack(payload)

    def _link(self, up: bool) -> None:
        """The broker link went up or down: health, and a backoff wait ends when it is up."""
        self.health.component("mqtt", up)
        if up and self.sync is not None:
            self.sync.resume()

    # -- the seam for producers ---------------------------------------------

    def add_worker(self, name: str, fn: WorkerFn) -> None:
        """Plug a worker in (weight, camera, decisions…): ``fn(stop)`` runs on its own thread.

        Add workers before :meth:`start`; a worker returns when ``stop`` is set.
        """
        self._workers.append(_Running(name, fn))

    def emit(self, events: Iterable[Mapping[str, Any]]) -> list[ShelfEvent]:
        """Commit events from a decision to the buffer (one transaction) and wake sync."""
        events = list(events)
        out = self.buffer.append_many(events)
        if self.ota is not None:
            self.ota.saw(events)
        if out and self.sync is not None:
            self.sync.wake.set()
        return out

    # -- live changes --------------------------------------------------------

    def _apply_config(self, new: Config) -> None:
        if self.sync is not None and new.sync != self.config.sync:
            self.sync.apply(new.sync)
        if new.buffer != self.config.buffer:
            self.buffer.apply(new.buffer)
        self.config = new
        for hook in self.config_hooks:
            hook(new)
        log.info("config changed from desired state")

    def _new_model(self, version: int) -> None:
        log.info("desired model version %d", version)
        for hook in self.model_hooks:
            hook(version)

    # -- health --------------------------------------------------------------

    def refresh_health(self) -> dict[str, Any]:
        """Put buffer figures into health, write the status file; returns the snapshot."""
        if self.buffer.held:  # events parked while the disk was full: try writing them
            self.buffer.retry_held()
        stats = self.buffer.stats()
        h = self.health
        h.set("buffer_depth", stats.depth)
        h.set("oldest_unsynced", stats.oldest_unsynced)
        h.set("seq", stats.seq)
        h.set("events_in_memory", stats.held)
        h.set("buffer_used_bytes", stats.used_bytes)
        h.set("health_interval_s", self.config.health.interval_s)
        snap = h.snapshot()
        write_status(self.data_dir / self.config.health.status_file, snap)
        text = render_metrics(snap, device_id=self.config.unit.device_id, now=snap["at"])
        write_textfile(self.data_dir / TEXTFILE, text)
        return snap

    def _health_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                snap = self.refresh_health()
                if self.mqtt is not None and self.config.health.publish:
                    self.mqtt.publish(TOPIC_HEALTH, health_payload(snap), qos=0)
                if self.http is not None and self.config.health.publish:
                    self._put_health(snap)
                trim()  # what the last interval freed goes back to the system
            except Exception:
                log.exception("health pass failed")
            stop.wait(self.config.health.interval_s)

    def _put_health(self, snap: dict[str, Any]) -> None:
        assert self.http is not None
        try:
            self.http.put_health(health_payload(snap))
        except SyncUnavailable as err:
            self.health.count("health_put_failures")
            log.debug("health report not delivered: %s", err)
        except SyncRejected as err:  # the cloud refused the report itself: say so, once a kind
            self.health.count("health_put_failures")
            self.health.count("health_refused")
            if str(err) != self._health_refusal:
                log.warning("the cloud refused this unit's health report: %s", err)
            self._health_refusal = str(err)
        else:
            self._health_refusal = ""

    # -- lifecycle -----------------------------------------------------------

    def _guard(self, w: _Running) -> None:
        try:
            w.fn(self.stop_event)
        except Exception:
            log.exception("worker %s crashed", w.name)
            self.health.count(f"worker_crash.{w.name}")
            self.health.alarm("worker_down", w.name)

    def start(self) -> None:
        """Start every worker thread and tell systemd we are ready."""
        for w in self._workers:
            w.thread = threading.Thread(target=self._guard, args=(w,), name=w.name, daemon=True)
            w.thread.start()
        self.notifier.notify("READY=1")
        log.info("agent started: %s", ", ".join(w.name for w in self._workers))

    def alive(self) -> bool:
        """True while every worker thread runs."""
        return all(w.thread is not None and w.thread.is_alive() for w in self._workers)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop workers, write a last status, close transports and the buffer."""
        self.notifier.notify("STOPPING=1")
        self.stop_event.set()
        if self.sync is not None:
            self.sync.wake.set()
        deadline = time.monotonic() + timeout
        for w in self._workers:
            if w.thread is not None:
                w.thread.join(max(0.1, deadline - time.monotonic()))
        self.health.set("stopped_at", time.time())  # `edge status`: a clean stop, not a crash
        with contextlib.suppress(Exception):
            self.refresh_health()
        if self.sync is not None:
            self.sync.close()
        self.buffer.close()
        log.info("agent stopped")

    def finish(self, *, drain_s: float = 60.0) -> None:
        """The work is done (a simulation played to its end): :meth:`run` returns once the
        outbox is sent (or sync is off), or after ``drain_s`` with what is left kept for
        the next start."""
        self._finish_by = time.monotonic() + drain_s

    def _finished(self) -> bool:
        if self._finish_by is None:
            return False
        left = self.buffer.stats().depth if self.sync is not None else 0
        if left == 0:
            log.info("done: every event decided and sent")
            return True
        if time.monotonic() >= self._finish_by:
            log.warning("done deciding; %d events stay in the buffer for the next start", left)
            return True
        return False

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`finish`); pings the systemd watchdog while healthy."""

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: shutting down", signum)
            self.stop_event.set()

        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            period = self.notifier.watchdog_s / 2 if self.notifier.watchdog_s else 5.0
            next_ping = time.monotonic() + period
            while not self.stop_event.wait(min(period, 0.25)):
                if self._finished():
                    break
                if time.monotonic() < next_ping:
                    continue
                next_ping = time.monotonic() + period
                if self.alive():
                    self.notifier.notify("WATCHDOG=1")
                else:
                    log.error("a worker died; withholding the watchdog ping")
        finally:
            self.stop()
            for s, h in old.items():
                signal.signal(s, h)
        return 0
