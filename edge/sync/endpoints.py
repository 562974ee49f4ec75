"""Where the cloud listens: every HTTP path and MQTT topic leaf the unit uses, in one place."""

from __future__ import annotations

from urllib.parse import quote

INGEST_EVENTS_PATH = "/v1/ingest/events"
HEALTH_PATH = "/v1/health"
DESIRED_PATH = "/v1/devices/{device_id}/desired"

TOPIC_EVENTS = "events"
TOPIC_ACK = "ack"
TOPIC_STATUS = "status"
TOPIC_HEALTH = "health"
TOPIC_DESIRED = "desired"
TOPIC_REPORTED = "reported"

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"


def url(base_url: str, path: str) -> str:
    """Join the configured base URL and an endpoint path."""
    return base_url.rstrip("/") + path


def desired_url(base_url: str, device_id: str) -> str:
    """The HTTP desired-state URL of one device."""
    return url(base_url, DESIRED_PATH.format(device_id=quote(device_id, safe="")))
