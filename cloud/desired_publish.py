"""Desired state out to the units: a retained QoS 1 message on ``shelfsense/<device_id>/desired``.

When an operator sets a unit's desired state, the API stores it and then hands the
stored document (the same body ``GET /v1/devices/<id>/desired`` answers) to a
:class:`DesiredPublisher`. The broker keeps it retained, so a unit on MQTT gets it
on every (re)subscription. The HTTP answer stays the source of truth: a publish
that fails is logged and the PUT still succeeds; units on HTTP poll it anyway.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.settings import CloudSettings
from models.wire import topic
from models.wire_fleet import DesiredState

log = logging.getLogger(__name__)


class DesiredPublisher:
    """A paho-mqtt (v5) client that publishes desired-state documents retained, QoS 1."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.publish_timeout_s = publish_timeout_s
        self.connected = threading.Event()
        self.published = 0
        self.failed = 0
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"shelfsense-desired-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(1, 10)

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> DesiredPublisher | None:
        """A publisher for the settings' broker; None when ``mqtt_host`` is not set."""
        if not settings.mqtt_host:
            return None
        pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return cls(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            username=settings.mqtt_username,
            password=pw,
        )

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the desired-state publisher: %s", rc)
            return
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self.connected.clear()

    def start(self) -> None:
        """Connect in the background (returns at once; see :attr:`connected`)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, desired: DesiredState) -> bool:
        """Publish ``desired`` retained and wait for the broker's PUBACK; False (logged) on failure.

        Never raises: the stored state is already committed and served over HTTP.
        """
        name = topic(desired.device_id, "desired")
        try:
            if not self.connected.is_set():
                raise ConnectionError(f"not connected to {self.host}:{self.port}")
            info = self.client.publish(name, desired.model_dump_json(), qos=1, retain=True)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(mqtt.error_string(info.rc))
            info.wait_for_publish(timeout=self.publish_timeout_s)
            if not info.is_published():
                raise TimeoutError(f"no PUBACK within {self.publish_timeout_s} s")
        except Exception as err:
            self.failed += 1
            log.warning("desired state of %s not published on %s: %s", desired.device_id, name, err)
            return False
        self.published += 1
        return True
