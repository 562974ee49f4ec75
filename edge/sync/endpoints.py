"""Where the cloud listens: every HTTP path and MQTT topic leaf the unit uses, in one place."""

from __future__ import annotations

from urllib.parse import quote

INGEST_EVENTS_PATH = "/v1/ingest/events"
PROBE_PATH = "/v1/health"  # the service answers: a cheap check that it is back
DESIRED_PATH = "/v1/devices/{device_id}/desired"
DEVICE_HEALTH_PATH = "/v1/devices/{device_id}/health"
REPORTED_PATH = "/v1/devices/{device_id}/reported"

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


def health_url(base_url: str, device_id: str) -> str:
    """The HTTP health-report URL of one device."""
    return url(base_url, DEVICE_HEALTH_PATH.format(device_id=quote(device_id, safe="")))


def reported_url(base_url: str, device_id: str) -> str:
    """The HTTP OTA-report URL of one device."""
    return url(base_url, REPORTED_PATH.format(device_id=quote(device_id, safe="")))
