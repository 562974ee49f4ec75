"""A unit-side MQTT client for tests: connects and subscribes waiting for CONNACK and SUBACK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class MqttUnit:
    """Publishes a unit's events and collects the cloud's acks on ``shelfsense/<id>/ack``."""

    def __init__(
        self,
        host: str,
        port: int,
        device_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.device_id = device_id
        self.acks: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._subacks: dict[int, list[Any]] = {}
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or device_id,
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = lambda *_a: self._connected.set()
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.connect(host, port)
        self.c.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"{device_id}: no CONNACK in {timeout} s")
        self.subscribe(f"shelfsense/{device_id}/ack")

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = list(codes)
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.acks.append(json.loads(msg.payload))
            self._cond.notify_all()

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[Any]:
        """Subscribe at QoS 1 and return the SUBACK reason codes (after waiting for them)."""
        _rc, mid = self.c.subscribe(topic, qos=1)
        self.wait(lambda: mid in self._subacks, timeout)
        return self._subacks[mid]

    def publish(self, payload: bytes | str | dict[str, Any], topic: str | None = None) -> None:
        """Publish at QoS 1 on the unit's events topic (or ``topic``) and wait for PUBACK."""
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        where = topic or f"shelfsense/{self.device_id}/events"
        self.c.publish(where, body, qos=1).wait_for_publish(10)

    def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Wait until ``done()`` holds (checked on every ack), or the timeout; returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def highest(self) -> int:
        """The highest ``highest_contiguous`` any ack named so far."""
        return max((a["highest_contiguous"] for a in self.acks), default=0)

    def refusals(self) -> list[dict[str, Any]]:
        """Every refusal named in an ack so far."""
        return [r for a in self.acks for r in a.get("refused", [])]

    def close(self) -> None:
        """Disconnect."""
        self.c.disconnect()
        self.c.loop_stop()
