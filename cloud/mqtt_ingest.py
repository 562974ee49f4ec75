"""MQTT ingest worker: one :class:`ShelfEvent` per message from a shared subscription.

Several workers subscribe to ``$share/ingest/shelfsense/+/events`` (MQTT v5,
QoS 1) and the broker splits the fleet's messages between them. A worker
gathers messages for up to ``mqtt_batch_wait_s`` (or ``mqtt_batch_max``
messages), stores the valid ones in one transaction, and only then
PUBACKs them to the broker (manual acks: a worker that dies before its commit
gets them redelivered) and publishes, per unit, an
:class:`models.wire.MqttAck` on ``shelfsense/<device_id>/ack`` with the unit's
highest contiguous stored seq. Acks from two workers can arrive out of order:
a unit keeps the highest ``highest_contiguous`` it has seen.

Every message is isolated. A message that can never be stored is *refused for
good*: too large, bad JSON, unknown fields, values out of bounds, a device id
other than its topic's, a time out of bounds, a store, bay or slot other than its
device's registration (:mod:`cloud.tenancy`), a device with no live key, or a
value the database itself refuses (found by bisecting the batch, so the others
are still stored). It is PUBACKed, logged and counted in
:attr:`IngestWorker.refused`; when its topic and seq can be read, the unit's ack
lists it under ``refused`` with a code and the reason, so the unit quarantines it
at once. Only a database that is away (:func:`cloud.failures.is_transient`) is
retried, with backoff, keeping the batch un-acked. Nothing a payload holds can end
the storing thread; should it die anyway a supervisor restarts it, and
:meth:`IngestWorker.down_reason` (read by ``/v1/health``) says why ingest is down
meanwhile.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.checks import TimeBounds
from cloud.errors import CloudError
from cloud.failures import RateLimitedLog, is_transient, reason
from cloud.ingest import IngestResult, highest_contiguous, store_events
from cloud.mqtt_messages import parse_message, refused_seq
from cloud.settings import CloudSettings
from cloud.store import Store
from cloud.tenancy import Registration, bind, registrations
from models.wire import MqttAck, Refusal, ShelfEvent, topic

log = logging.getLogger(__name__)

SHARED_TOPIC = "$share/ingest/shelfsense/+/events"
__all__ = ["SHARED_TOPIC", "IngestWorker", "parse_message", "refused_seq"]


T = TypeVar("T")


class _Stopping(Exception):
    """The worker is stopping while the database is away: leave the batch un-acked."""


@dataclass(frozen=True)
class Parsed:
    """A message that passed the checks that need no database, and where it came from."""

    event: ShelfEvent
    mid: int
    qos: int


class IngestWorker:
    """A paho-mqtt client on the shared subscription plus a thread that stores and acks."""

    def __init__(
        self,
        store: Store,
        *,
        host: str,
        port: int,
        bounds: TimeBounds,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        batch_max: int = 500,
        batch_wait_s: float = 0.05,
        retry_max_s: float = 10.0,
        supervise_s: float = 0.5,
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.bounds = bounds
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.retry_max_s, self.supervise_s = retry_max_s, supervise_s
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self.errors = 0  # batches that raised past every guard (a bug, not a payload)
        self.restarts = 0  # times the supervisor restarted the storing thread
        self.ready = threading.Event()
        self.connected = threading.Event()
        self._db_down_since: float | None = None
        self._refusal_log = RateLimitedLog(log, per_minute=20)
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"shelfsense-ingest-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)

    @classmethod
    def from_settings(cls, settings: CloudSettings, store: Store) -> IngestWorker:
        """A worker configured from the cloud settings (``mqtt_host`` must be set)."""
        if not settings.mqtt_host:
            raise ValueError("mqtt_host is not set")
        pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return cls(
            store,
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            bounds=TimeBounds.of(settings.max_future_s, settings.max_past_days),
            username=settings.mqtt_username,
            password=pw,
            batch_max=settings.mqtt_batch_max,
            batch_wait_s=settings.mqtt_batch_wait_s,
        )

    def down_reason(self) -> str | None:
        """Why ingest is not working now (``None``: it is); read by ``/v1/health``."""
        if self._thread is None:
            return "the ingest worker is not started"
        if not self._thread.is_alive():
            return "the ingest storing thread stopped (its supervisor restarts it)"
        if not self.connected.is_set():
            return f"not connected to the broker at {self.host}:{self.port}"
        if not self.ready.is_set():
            return f"not subscribed to {SHARED_TOPIC}"
        if self._db_down_since is not None:
            return "the database is unavailable; the batch waits un-acked"
        return None

    # paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the ingest worker: %s", rc)
            return
        self.connected.set()
        client.subscribe(SHARED_TOPIC, qos=1)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        self.ready.clear()
        if not self._stop.is_set():
            log.warning("ingest worker lost the broker (%s); reconnecting", rc)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if all(not c.is_failure for c in codes):
            self.ready.set()
        else:
            log.error("subscription to %s refused: %s", SHARED_TOPIC, codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(msg)

    # storing thread ----------------------------------------------------------------------

    def _gather(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        msgs = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(msgs) < self.batch_max:
            left = deadline - time.monotonic()
            try:
                msgs.append(self._inbox.get(timeout=left) if left > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return msgs

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with backoff while the database is away; other errors pass."""
        wait = 0.25
        while True:
            try:
                got = fn()
            except Exception as err:
                if not is_transient(err):
                    raise
                if self._db_down_since is None:
                    self._db_down_since = time.monotonic()
                    log.error("%s: the database is away (%s); retrying", what, reason(err))
                if self._stop.wait(wait):
                    raise _Stopping from err
                wait = min(self.retry_max_s, wait * 2)
                continue
            if self._db_down_since is not None:
                down = time.monotonic() - self._db_down_since
                log.warning("%s: the database is back after %.1f s", what, down)
                self._db_down_since = None
            return got

    def _store(
        self, evs: list[ShelfEvent], now: datetime, refuse: Callable[[ShelfEvent, str], None]
    ) -> list[IngestResult]:
        """Store ``evs``; a value the database refuses is found by halving and refused alone."""
        try:
            return [
                self._retry("storing MQTT events", lambda: store_events(self.store, evs, now=now))
            ]
        except _Stopping:
            raise
        except Exception as err:
            if len(evs) == 1:
                log.warning(
                    "event %s/%d refused by the database: %s",
                    evs[0].device_id,
                    evs[0].seq,
                    reason(err),
                )
                refuse(evs[0], f"unstorable: {reason(err)}")
                return []
            mid = len(evs) // 2
            return self._store(evs[:mid], now, refuse) + self._store(evs[mid:], now, refuse)

    def process(self, msgs: list[mqtt.MQTTMessage]) -> dict[str, MqttAck]:
        """Store a batch of messages, then PUBACK them and publish each unit's ack."""
        now = datetime.now(UTC)
        refusals: dict[str, list[Refusal]] = defaultdict(list)

        def refuse_event(ev: ShelfEvent, why: str) -> None:
            self.refused += 1
            refusals[ev.device_id].append(Refusal(seq=ev.seq, reason=why[:500]))

        parsed: list[Parsed] = []
        for m in msgs:
            payload = bytes(m.payload)
            try:
                parsed.append(
                    Parsed(
                        parse_message(m.topic, payload, now=now, bounds=self.bounds), m.mid, m.qos
                    )
                )
            except Exception as err:  # whatever it holds, a message is only ever refused
                self.refused += 1
                code = err.code if isinstance(err, CloudError) else "invalid_event"
                self._refusal_log("refused MQTT message on %r: %s", m.topic[:200], reason(err))
                sender = refused_seq(m.topic, payload)
                if sender is not None:
                    refusals[sender[0]].append(
                        Refusal(seq=sender[1], reason=f"{code}: {reason(err)}"[:500])
                    )
        try:
            good = self._bind([p.event for p in parsed], refuse_event)
            results = self._store(good, now, refuse_event) if good else []
            acks = self._acks(results, refusals)
        except _Stopping:
            return {}  # stopping: leave them un-acked, the broker redelivers
        for m in msgs:
            self.client.ack(m.mid, m.qos)
        for device_id, ack in acks.items():
            self.client.publish(topic(device_id, "ack"), ack.model_dump_json(), qos=1)
        return acks

    def _bind(
        self, evs: list[ShelfEvent], refuse: Callable[[ShelfEvent, str], None]
    ) -> list[ShelfEvent]:
        """The events held to their devices' registrations; the others refused."""
        if not evs:
            return []

        def read() -> dict[str, Registration]:
            with self.store.engine.connect() as conn:
                return registrations(conn, {ev.device_id for ev in evs})

        regs = self._retry("reading registrations", read)
        out = []
        for ev in evs:
            try:
                out.append(bind(ev, regs.get(ev.device_id), where="event"))
            except CloudError as err:
                self._refusal_log("refused event %s/%d: %s", ev.device_id, ev.seq, err.message)
                refuse(ev, f"{err.code}: {err.message}")
        return out

    def _acks(
        self, results: list[IngestResult], refusals: dict[str, list[Refusal]]
    ) -> dict[str, MqttAck]:
        seqs: dict[str, list[int]] = defaultdict(list)
        highest: dict[str, int] = {}
        for result in results:
            for device_id, stored in result.stored.items():
                seqs[device_id] += stored
                self.stored += len(stored)
            for device_id, dups in result.duplicates.items():
                seqs[device_id] += dups
                self.duplicates += len(dups)
            for device_id, hc in result.highest_contiguous.items():
                highest[device_id] = max(hc, highest.get(device_id, 0))
        for device_id in refusals:
            if device_id not in highest:
                highest[device_id] = self._retry(
                    "reading a unit's progress", partial(highest_contiguous, self.store, device_id)
                )
        return {
            d: MqttAck(
                device_id=d,
                highest_contiguous=hc,
                stored=sorted(seqs.get(d, [])),
                refused=refusals.get(d, []),
            )
            for d, hc in highest.items()
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            msgs = self._gather()
            if not msgs:
                continue
            try:
                self.process(msgs)
            except Exception:  # a bug, not a payload: take the messages one by one
                self.errors += 1
                log.exception("an MQTT batch of %d failed; handling its messages alone", len(msgs))
                for m in msgs:
                    self._process_alone(m)

    def _process_alone(self, m: mqtt.MQTTMessage) -> None:
        try:
            self.process([m])
        except Exception:
            self.errors += 1
            self.refused += 1
            log.exception("MQTT message on %r dropped: it fails on its own", m.topic[:200])
            self.client.ack(m.mid, m.qos)

    def _start_storing(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(self.supervise_s):
            if self._thread is not None and not self._thread.is_alive():
                self.restarts += 1
                log.error("the MQTT ingest storing thread died; restart %d", self.restarts)
                self._start_storing()

    def start(self) -> None:
        """Connect, subscribe and start storing (returns at once; see :attr:`ready`)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=True, properties=props
        )
        self.client.loop_start()
        self._start_storing()
        self._supervisor = threading.Thread(
            target=self._supervise, name="mqtt-ingest-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self) -> None:
        """Stop storing and disconnect; un-stored messages stay un-acked for redelivery."""
        self._stop.set()
        for t in (self._supervisor, self._thread):
            if t is not None:
                t.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()
