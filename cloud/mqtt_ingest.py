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

A message that can never be stored (bad JSON, unknown fields, a device id
other than its topic's, a time out of bounds) is PUBACKed, logged and counted
in :attr:`IngestWorker.refused`; it would fail the same way on every redelivery.
When its topic and seq can be read, the unit's ack lists it under ``refused`` with
the reason, so the unit quarantines it at once instead of resending it.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from cloud.checks import TimeBounds, check_event
from cloud.errors import CloudError
from cloud.ingest import highest_contiguous, store_events
from cloud.settings import CloudSettings
from cloud.store import Store
from models.wire import DEVICE_ID_PATTERN, MqttAck, Refusal, ShelfEvent, topic

log = logging.getLogger(__name__)

SHARED_TOPIC = "$share/ingest/shelfsense/+/events"


@dataclass(frozen=True)
class Parsed:
    """A message that passed every check, with what the broker needs to ack it."""

    event: ShelfEvent
    mid: int
    qos: int


def parse_message(
    topic_name: str, payload: bytes, *, now: datetime, bounds: TimeBounds
) -> ShelfEvent:
    """The event in one message; :class:`ValueError` (with the reason) when it must be refused."""
    parts = topic_name.split("/")
    if len(parts) != 3 or parts[0] != "shelfsense" or parts[2] != "events":
        raise ValueError(f"not an events topic: {topic_name!r}")
    try:
        ev = ShelfEvent.model_validate_json(payload)
    except ValidationError as err:
        raise ValueError(f"invalid event on {topic_name}: {err.errors()[0]['msg']}") from err
    if ev.device_id != parts[1]:
        raise ValueError(f"event of {ev.device_id!r} published on {topic_name!r}")
    check_event(ev, now=now, bounds=bounds, where="event")
    return ev


def refused_seq(topic_name: str, payload: bytes) -> tuple[str, int] | None:
    """``(device_id, seq)`` of a refused message when both can be read (to tell the unit)."""
    parts = topic_name.split("/")
    if len(parts) != 3 or not re.fullmatch(DEVICE_ID_PATTERN, parts[1]):
        return None
    try:
        seq = json.loads(payload).get("seq")
    except (ValueError, AttributeError):
        return None
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= 2**62:
        return None
    return parts[1], seq


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
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.bounds = bounds
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self.ready = threading.Event()
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"shelfsense-ingest-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
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

    # paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the ingest worker: %s", rc)
            return
        client.subscribe(SHARED_TOPIC, qos=1)

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

    def process(self, msgs: list[mqtt.MQTTMessage]) -> dict[str, MqttAck]:
        """Store a batch of messages, then PUBACK them and publish each unit's ack."""
        now = datetime.now(UTC)
        good: list[Parsed] = []
        refusals: dict[str, list[Refusal]] = defaultdict(list)
        for m in msgs:
            try:
                ev = parse_message(m.topic, bytes(m.payload), now=now, bounds=self.bounds)
            except (ValueError, CloudError) as err:
                self.refused += 1
                log.warning("refused MQTT message: %s", err)
                sender = refused_seq(m.topic, bytes(m.payload))
                if sender is not None:
                    code = err.code if isinstance(err, CloudError) else "invalid_event"
                    reason = f"{code}: {err}"[:500]
                    refusals[sender[0]].append(Refusal(seq=sender[1], reason=reason))
                continue
            good.append(Parsed(ev, m.mid, m.qos))
        acks: dict[str, MqttAck] = {}
        if good:
            while not self._stop.is_set():
                try:
                    result = store_events(self.store, [p.event for p in good], now=now)
                    break
                except Exception:  # the database is away: keep the batch, retry
                    log.exception("storing %d MQTT events failed; retrying", len(good))
                    self._stop.wait(1.0)
            else:
                return {}  # stopping: leave them un-acked, the broker redelivers
            seqs: dict[str, list[int]] = defaultdict(list)
            for device_id, stored in result.stored.items():
                seqs[device_id] += stored
                self.stored += len(stored)
            for device_id, dups in result.duplicates.items():
                seqs[device_id] += dups
                self.duplicates += len(dups)
            for device_id, hc in result.highest_contiguous.items():
                acks[device_id] = MqttAck(
                    device_id=device_id, highest_contiguous=hc, stored=sorted(seqs[device_id])
                )
        for device_id, refused in refusals.items():
            ack = acks.get(device_id) or MqttAck(
                device_id=device_id, highest_contiguous=highest_contiguous(self.store, device_id)
            )
            acks[device_id] = ack.model_copy(update={"refused": refused})
        for m in msgs:
            self.client.ack(m.mid, m.qos)
        for device_id, ack in acks.items():
            self.client.publish(topic(device_id, "ack"), ack.model_dump_json(), qos=1)
        return acks

    def _run(self) -> None:
        while not self._stop.is_set():
            msgs = self._gather()
            if msgs:
                self.process(msgs)

    def start(self) -> None:
        """Connect, subscribe and start storing (returns at once; see :attr:`ready`)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=True, properties=props
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop storing and disconnect; un-stored messages stay un-acked for redelivery."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()
