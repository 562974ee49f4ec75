"""MQTT fleet-state worker: each unit's ``status``, ``health`` and ``reported`` into the store.

It subscribes (MQTT v5, on the service listener) to

- ``shelfsense/+/status`` as a plain subscription: a shared one gets no retained
  messages, and the retained ``online``/``offline`` (last will included) is how a
  cloud that starts learns who is online (a retained copy does not count as the
  unit heard from). Every worker stores every status; a status that does not change
  the stored one changes only when the unit was heard;
- ``$share/fleet/shelfsense/+/health`` and ``$share/fleet/shelfsense/+/reported``:
  the broker splits these between the workers, as it does events.

Every message is handled alone (:meth:`FleetStateWorker.handle`): parsed by
:func:`cloud.fleet_messages.parse_state_message` (topic, size, schema), then stored
in its own transaction for the device its topic names (the broker lets a unit
publish only on its own topics). A message that cannot be taken (malformed, too
large, an unknown device, a value the database refuses) is refused alone: logged
with the reason (rate limited), counted in :attr:`FleetStateWorker.refused`, and the
next message is handled as usual. A database that is away is retried with backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud import fleet_state, rollouts
from cloud.errors import CloudError
from cloud.failures import RateLimitedLog, is_transient, reason
from cloud.fleet_messages import StateMessage, parse_state_message
from cloud.settings import CloudSettings
from cloud.store import Store

log = logging.getLogger(__name__)

STATUS_TOPIC = "shelfsense/+/status"
SHARED_TOPICS = ("$share/fleet/shelfsense/+/health", "$share/fleet/shelfsense/+/reported")
MAX_INBOX = 10_000  # messages waiting for the database; past it the oldest health is dropped


class FleetStateWorker:
    """A paho-mqtt client on the units' state topics plus a thread that stores each message."""

    def __init__(
        self,
        store: Store,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        retry_max_s: float = 10.0,
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.retry_max_s = retry_max_s
        self.stored = 0
        self.refused = 0
        self.dropped = 0  # messages dropped because the inbox was full
        self.last_refusal: str | None = None
        self.ready = threading.Event()
        self.connected = threading.Event()
        self._refusal_log = RateLimitedLog(log, per_minute=20)
        self._inbox: queue.Queue[tuple[str, bytes, bool]] = queue.Queue(MAX_INBOX)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"shelfsense-fleet-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)

    @classmethod
    def from_settings(cls, settings: CloudSettings, store: Store) -> FleetStateWorker:
        """A worker configured from the cloud settings (``mqtt_host`` must be set)."""
        if not settings.mqtt_host:
            raise ValueError("mqtt_host is not set")
        pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return cls(
            store,
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            username=settings.mqtt_username,
            password=pw,
        )

    def down_reason(self) -> str | None:
        """Why fleet state is not being read now (``None``: it is)."""
        if self._thread is None or not self._thread.is_alive():
            return "the fleet state worker is not running"
        if not self.connected.is_set():
            return f"fleet state: not connected to the broker at {self.host}:{self.port}"
        if not self.ready.is_set():
            return "fleet state: not subscribed to the units' state topics"
        return None

    # paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the fleet state worker: %s", rc)
            return
        self.connected.set()
        client.subscribe([(STATUS_TOPIC, 1), *((t, 1) for t in SHARED_TOPICS)])

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        self.ready.clear()
        if not self._stop.is_set():
            log.warning("fleet state worker lost the broker (%s); reconnecting", rc)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if all(not c.is_failure for c in codes):
            self.ready.set()
        else:
            log.error("fleet state subscriptions refused: %s", codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._inbox.put_nowait((msg.topic, bytes(msg.payload), bool(msg.retain)))
        except queue.Full:
            self.dropped += 1  # the database is far behind: a newer report will come

    # storing thread ----------------------------------------------------------------------

    def _apply(self, msg: StateMessage, now: datetime) -> None:
        with self.store.writer.begin() as conn:
            if msg.online is not None:
                fleet_state.record_status(
                    conn, msg.device_id, msg.online, now, retained=msg.retained
                )
            elif msg.health is not None:
                fleet_state.record_health(conn, msg.device_id, msg.health, now)
            elif msg.reported is not None:
                rollouts.record_report(conn, msg.device_id, msg.reported, now)
                fleet_state.note_seen(conn, msg.device_id, now)

    def handle(self, topic_name: str, payload: bytes, *, retained: bool = False) -> bool:
        """Store one message; False when it is refused (the reason logged and kept)."""
        try:
            msg = parse_state_message(topic_name, payload, retained=retained)
        except Exception as err:  # whatever it holds, a message is only ever refused
            self._refuse(topic_name, err)
            return False
        wait = 0.25
        while True:
            try:
                self._apply(msg, datetime.now(UTC))
            except Exception as err:
                if is_transient(err) and not self._stop.wait(wait):
                    log.warning("fleet state: the database is away (%s); retrying", reason(err))
                    wait = min(self.retry_max_s, wait * 2)
                    continue
                self._refuse(topic_name, err)
                return False
            self.stored += 1
            return True

    def _refuse(self, topic_name: str, err: BaseException) -> None:
        self.refused += 1
        code = err.code if isinstance(err, CloudError) else "unstorable"
        self.last_refusal = f"{topic_name[:200]}: {code}: {reason(err)}"[:500]
        self._refusal_log("refused state message on %r: %s", topic_name[:200], self.last_refusal)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                topic_name, payload, retained = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.handle(topic_name, payload, retained=retained)
            except Exception:  # a bug, not a payload: never end the thread
                self.refused += 1
                log.exception("fleet state message on %r dropped", topic_name[:200])

    def start(self) -> None:
        """Connect, subscribe and start storing (returns at once; see :attr:`ready`)."""
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=True)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-fleet-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop storing and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()
