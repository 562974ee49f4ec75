"""Reading one unit's state message from MQTT: bounded, validated, never trusted before that.

A unit publishes on its own topics (the broker lets it publish on no other):

- ``shelfsense/<id>/status``: ``online`` or ``offline``, retained; its last will is ``offline``;
- ``shelfsense/<id>/health``: a :class:`models.wire.HealthReport` as JSON;
- ``shelfsense/<id>/reported``: a :class:`cloud.ota_schemas.ReportedCreate` as JSON.

:func:`parse_state_message` checks the topic and the size before any parsing, then the
schema; the device is the one its topic names (no payload names another). Pure: bytes
in, a :class:`StateMessage` or a :class:`StateRefused` with the reason out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from cloud.errors import CloudError
from cloud.ota_schemas import ReportedCreate
from models.wire import DEVICE_ID_PATTERN, MAX_HEALTH_BYTES, HealthReport

STATE_LEAVES = ("status", "health", "reported")
MAX_STATUS_BYTES = 16
MAX_REPORTED_BYTES = 4_096
_LIMITS = {"status": MAX_STATUS_BYTES, "health": MAX_HEALTH_BYTES, "reported": MAX_REPORTED_BYTES}
_DEVICE = re.compile(DEVICE_ID_PATTERN)

Leaf = Literal["status", "health", "reported"]


class StateRefused(CloudError, ValueError):
    """A unit's status, health or reported message that cannot be taken."""

    code = "invalid_state_message"
    status = 422


@dataclass(frozen=True)
class StateMessage:
    """One valid state message: whose, which kind, and its value."""

    device_id: str
    leaf: Leaf
    online: bool | None = None  # status
    retained: bool = False  # the broker's stored copy, handed over at subscribe
    health: HealthReport | None = None
    reported: ReportedCreate | None = None


def _first_error(err: ValidationError, topic_name: str) -> StateRefused:
    first = err.errors(include_url=False)[0]
    at = ".".join(str(p) for p in first["loc"]) or "body"
    return StateRefused(f"invalid message on {topic_name}: {at}: {first['msg']}"[:400], field=at)


def split_topic(topic_name: str) -> tuple[str, Leaf]:
    """``(device_id, leaf)`` of a state topic; :class:`StateRefused` for any other topic."""
    parts = topic_name.split("/")
    if (
        len(parts) != 3
        or parts[0] != "shelfsense"
        or parts[2] not in STATE_LEAVES
        or not _DEVICE.fullmatch(parts[1])
    ):
        raise StateRefused(f"not a unit state topic: {topic_name[:200]!r}", field="topic")
    return parts[1], parts[2]  # type: ignore[return-value]


def parse_state_message(topic_name: str, payload: bytes, *, retained: bool = False) -> StateMessage:
    """The state message on ``topic_name``; :class:`StateRefused` (with the reason) otherwise."""
    device_id, leaf = split_topic(topic_name)
    limit = _LIMITS[leaf]
    if len(payload) > limit:
        raise StateRefused(
            f"a {leaf} message of {len(payload)} bytes is over {limit}", field="payload"
        )
    if leaf == "status":
        text = payload.strip()
        if text not in (b"online", b"offline"):
            raise StateRefused(
                f"status on {topic_name} is {payload[:16]!r}, not online or offline",
                field="payload",
            )
        return StateMessage(device_id, leaf, online=text == b"online", retained=retained)
    try:
        if leaf == "health":
            return StateMessage(device_id, leaf, health=HealthReport.model_validate_json(payload))
        return StateMessage(device_id, leaf, reported=ReportedCreate.model_validate_json(payload))
    except ValidationError as err:
        raise _first_error(err, topic_name) from err
