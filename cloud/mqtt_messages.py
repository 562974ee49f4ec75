"""Reading one MQTT message as an event: bounded, validated, never trusted before that.

:func:`parse_message` checks the topic and the size before any parsing (the JSON
parser itself bounds nesting depth), then the wire schema and the time bounds;
:func:`refused_seq` reads just enough of a refused message to tell its unit which
seq was refused. Pure: bytes in, an event or a :class:`ValueError` out.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.checks import TimeBounds, check_event
from models.wire import DEVICE_ID_PATTERN, MAX_EVENT_BYTES, MAX_SAFE_INT, ShelfEvent


class _SeqProbe(BaseModel):
    """Just the seq of a refused message (parsed by the depth-bounded JSON parser)."""

    model_config = ConfigDict(extra="ignore")
    seq: int = Field(..., ge=1, le=MAX_SAFE_INT)


def parse_message(
    topic_name: str, payload: bytes, *, now: datetime, bounds: TimeBounds
) -> ShelfEvent:
    """The event in one message; :class:`ValueError` (with the reason) when it must be refused.

    The size is checked before any parsing; the JSON parser bounds nesting depth.
    """
    parts = topic_name.split("/")
    if len(parts) != 3 or parts[0] != "shelfsense" or parts[2] != "events":
        raise ValueError(f"not an events topic: {topic_name!r}")
    if len(payload) > MAX_EVENT_BYTES:
        raise ValueError(f"a message of {len(payload)} bytes is over {MAX_EVENT_BYTES}")
    try:
        ev = ShelfEvent.model_validate_json(payload)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        at = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"invalid event on {topic_name}: {at}: {first['msg']}"[:400]) from err
    if ev.device_id != parts[1]:
        raise ValueError(f"event of {ev.device_id!r} published on {topic_name!r}")
    check_event(ev, now=now, bounds=bounds, where="event")
    return ev


def refused_seq(topic_name: str, payload: bytes) -> tuple[str, int] | None:
    """``(device_id, seq)`` of a refused message when both can be read (to tell the unit)."""
    parts = topic_name.split("/")
    if len(parts) != 3 or not re.fullmatch(DEVICE_ID_PATTERN, parts[1]):
        return None
    if len(payload) > MAX_EVENT_BYTES:
        return None
    try:
        seq = _SeqProbe.model_validate_json(payload).seq
    except Exception:  # anything unreadable: the unit is simply not told
        return None
    return parts[1], seq
