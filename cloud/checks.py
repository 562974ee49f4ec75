"""Checks on events from units, before anything is stored: pure, no I/O.

:func:`check_batch` refuses a whole batch (HTTP) and :func:`check_event` one
event (MQTT) with a :class:`cloud.errors.CloudError` that names the field at
fault: another device's events, a wall time too far ahead of the cloud's clock
or too far in the past, values no column can hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud.errors import ForbiddenError, InvalidEventError
from models.wire import EventBatch, ShelfEvent


@dataclass(frozen=True)
class TimeBounds:
    """How far from the cloud's clock an event's wall time may be."""

    max_future: timedelta
    max_past: timedelta

    @classmethod
    def of(cls, max_future_s: float, max_past_days: float) -> TimeBounds:
        """Bounds from settings values."""
        return cls(timedelta(seconds=max_future_s), timedelta(days=max_past_days))


def aware(value: datetime) -> datetime:
    """``value`` with a zone: naive wall times from units are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1


def _check_storable(ev: ShelfEvent, where: str) -> None:
    """Refuse values the wire schema allows but no column can hold (huge ints, inf, NaN)."""
    if ev.model_version is not None and ev.model_version > MAX_INT32:
        raise InvalidEventError(
            f"model_version {ev.model_version} is out of range",
            field=f"{where}.model_version",
            code="invalid_value",
        )
    if ev.episode is not None and ev.episode > MAX_INT64:
        raise InvalidEventError(
            "episode is out of range", field=f"{where}.episode", code="invalid_value"
        )
    if not math.isfinite(ev.mono_time):
        raise InvalidEventError(
            "mono_time must be finite", field=f"{where}.mono_time", code="invalid_value"
        )
    for name, value in ev.features.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidEventError(
                f"feature {name!r} must be finite",
                field=f"{where}.features.{name}",
                code="invalid_value",
            )


def check_event(ev: ShelfEvent, *, now: datetime, bounds: TimeBounds, where: str) -> None:
    """Refuse an event stamped too far in the future or the past, or holding unstorable values."""
    _check_event(ev, now + bounds.max_future, now - bounds.max_past, bounds, where)


def _check_event(
    ev: ShelfEvent, latest: datetime, earliest: datetime, bounds: TimeBounds, where: str
) -> None:
    """:func:`check_event` with the window of accepted times worked out by the caller."""
    _check_storable(ev, where)
    t = aware(ev.wall_time)
    if t > latest:
        raise InvalidEventError(
            f"event seq {ev.seq} is stamped {t.isoformat()}, more than "
            f"{bounds.max_future.total_seconds():.0f} s ahead of the cloud clock",
            field=f"{where}.wall_time",
            code="event_from_future",
        )
    if t < earliest:
        raise InvalidEventError(
            f"event seq {ev.seq} is stamped {t.isoformat()}, older than "
            f"{bounds.max_past.days} days",
            field=f"{where}.wall_time",
            code="event_too_old",
        )


def check_batch(
    batch: EventBatch, *, now: datetime, bounds: TimeBounds, key_device: str | None
) -> None:
    """Refuse the whole batch if any event is out of bounds or not the batch's device.

    ``key_device`` is the device id the caller's key belongs to (``None``: not checked).
    """
    if key_device is not None and batch.device_id != key_device:
        raise ForbiddenError(
            f"this key belongs to device {key_device!r}, not {batch.device_id!r}",
            field="device_id",
            code="device_mismatch",
        )
    latest, earliest = now + bounds.max_future, now - bounds.max_past
    for i, ev in enumerate(batch.events):
        if ev.device_id != batch.device_id:
            raise InvalidEventError(
                f"event {i} is from device {ev.device_id!r}, the batch from {batch.device_id!r}",
                field=f"events.{i}.device_id",
                code="device_mismatch",
            )
        _check_event(ev, latest, earliest, bounds, f"events.{i}")
