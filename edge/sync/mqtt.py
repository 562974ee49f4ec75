"""Sync over MQTT (paho-mqtt 2.x, MQTT v5, QoS 1) with the cloud's own acknowledgements.

On connect the unit publishes a retained ``online`` on ``…/status`` (its last will
is a retained ``offline``) and subscribes to ``…/ack`` and ``…/desired``. Events go
one per message on ``…/events``. A broker PUBACK only means the broker has the
message; rows leave the outbox when the cloud's :class:`~models.wire.MqttAck` names
them, which this transport hands to ``on_ack``. paho keeps no session on disk and
reconnects by itself; anything unacknowledged is simply sent again. The broker login
is the device id with the API key as password unless the identity names others, and
the client id is that login (the fleet's broker enforces it: one session per unit).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.buffer.policy import Batch
from edge.sync.endpoints import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    TOPIC_ACK,
    TOPIC_DESIRED,
    TOPIC_EVENTS,
    TOPIC_STATUS,
)
from edge.sync.identity import Identity
from edge.sync.transport import SyncUnavailable, event_payloads
from models.wire import topic

log = logging.getLogger(__name__)

PayloadHandler = Callable[[bytes], object]


def _ignore(_: bytes) -> None:
    return None


def broker_login(identity: Identity) -> tuple[str | None, str | None]:
    """Broker username and password: as the identity names them, else the device id and key.

    The cloud writes the broker's password file with each unit's device id as user
    and its API key as password, so one secret serves HTTP and MQTT.
    """
    if identity.mqtt_username:
        return identity.mqtt_username, identity.mqtt_password
    if identity.api_key:
        return identity.device_id, identity.mqtt_password or identity.api_key
    return None, None


class MqttTransport:
    """A paho client bound to one device's topics; events out, acks and desired state in."""

    name = "mqtt"
    acks_in_reply = False

    def __init__(
        self,
        host: str,
        port: int,
        identity: Identity,
        *,
        tls: bool = False,
        keepalive_s: int = 30,
        reconnect_max_s: float = 60.0,
        on_ack: PayloadHandler = _ignore,
        on_desired: PayloadHandler = _ignore,
        on_link: Callable[[bool], None] | None = None,
    ) -> None:
        self.identity = identity
        self.device_id = identity.device_id
        self.on_ack = on_ack
        self.on_desired = on_desired
        self.on_link = on_link
        self._connected = threading.Event()
        username, password = broker_login(identity)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            # The broker makes a unit's client id its login (use_username_as_clientid);
            # asking for that very id keeps the session the same either way.
            client_id=username or self.device_id,
            protocol=mqtt.MQTTv5,
        )
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(
                ca_certs=identity.ca_file,
                certfile=identity.client_cert,
                keyfile=identity.client_key,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.will_set(
            topic(self.device_id, TOPIC_STATUS), STATUS_OFFLINE, qos=1, retain=True
        )
        self.client.max_inflight_messages_set(1000)  # the burst is bounded by batch_size
        self.client.reconnect_delay_set(1, max(1, int(reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async(host, port, keepalive=keepalive_s)
        self.client.loop_start()

    # paho callbacks (network thread)
    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("MQTT connect refused: %s", rc)
            return
        client.publish(topic(self.device_id, TOPIC_STATUS), STATUS_ONLINE, qos=1, retain=True)
        client.subscribe(
            [(topic(self.device_id, TOPIC_ACK), 1), (topic(self.device_id, TOPIC_DESIRED), 1)]
        )
        log.info("MQTT connected")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        codes: list[ReasonCode],
        props: object,
    ) -> None:
        # Usable only once the ack subscription is in place: no cloud ack can be missed.
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            log.error("broker refused the ack/desired subscription: %s", refused)
            return
        self._connected.set()
        if self.on_link:
            self.on_link(True)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        self._connected.clear()
        log.info("MQTT disconnected: %s", rc)
        if self.on_link:
            self.on_link(False)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic.rsplit("/", 1)[-1]
        try:
            if leaf == TOPIC_ACK:
                self.on_ack(bytes(msg.payload))
            elif leaf == TOPIC_DESIRED:
                self.on_desired(bytes(msg.payload))
        except Exception:  # a handler bug must not kill paho's network thread
            log.exception("handling %s failed", msg.topic)

    # Transport
    def available(self) -> bool:
        """True while connected to the broker and subscribed to acks."""
        return self._connected.is_set()

    def probe(self) -> bool:
        """The broker link is back (paho reconnects by itself)."""
        return self.available()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (or ``timeout``); True when connected."""
        return self._connected.wait(timeout)

    def send(self, batch: Batch) -> list[int]:
        """Publish every event at QoS 1; acknowledgements arrive later through ``on_ack``."""
        if not self.available():
            raise SyncUnavailable("MQTT not connected")
        t = topic(self.device_id, TOPIC_EVENTS)
        for payload in event_payloads(batch):
            info = self.client.publish(t, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise SyncUnavailable(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        return []

    def publish(
        self, leaf: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> bool:
        """Publish on ``shelfsense/<id>/<leaf>`` if connected; True when handed to paho."""
        if not self.available():
            return False
        info = self.client.publish(topic(self.device_id, leaf), payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        """Say ``offline`` (retained) and disconnect cleanly."""
        if self.available():
            info = self.client.publish(
                topic(self.device_id, TOPIC_STATUS), STATUS_OFFLINE, qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()
