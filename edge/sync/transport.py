"""What the sync worker needs from a way to the cloud, and the errors it may raise."""

from __future__ import annotations

import json
from typing import Protocol

from edge.buffer.policy import Batch
from edge.errors import EdgeError


class SyncError(EdgeError, ConnectionError):
    """Base of sync failures."""


class SyncUnavailable(SyncError):
    """The cloud cannot be reached now (network down, timeout, 5xx): retry later.

    ``retry_after`` is the wait in seconds the cloud asked for (``Retry-After`` on a
    429 or 503), or None when it named none.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SyncRejected(SyncError):
    """The cloud refused the request (401/403/4xx): retry later, and say so in health."""


class SyncRefused(SyncRejected):
    """The cloud refused the events themselves: resending them unchanged can never work.

    ``status`` and ``code`` are the cloud's answer; ``index`` is the batch position of
    the event at fault when the answer names one; ``whole_batch`` means every event of
    the batch is refused alike (e.g. another device's events), so splitting is useless.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str = "",
        index: int | None = None,
        whole_batch: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.index = index
        self.whole_batch = whole_batch


class Transport(Protocol):
    """One way to the cloud (HTTP or MQTT)."""

    name: str
    acks_in_reply: bool  # True: send() returns the acks; False: they arrive through on_ack

    def available(self) -> bool:
        """True when a send could work now (MQTT: connected)."""
        ...

    def send(self, batch: Batch) -> list[int]:
        """Send a batch; returns the seqs the reply acknowledged (MQTT acks arrive apart)."""
        ...

    def probe(self) -> bool:
        """A cheap check, while backing off, that the cloud answers again."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def event_payloads(batch: Batch) -> list[str]:
    """The rows' JSON with ``historical`` set as the batch says (rows are stored unflagged)."""
    if not batch.historical:
        return [r.body for r in batch.rows]
    out = []
    for r in batch.rows:
        data = json.loads(r.body)
        data["historical"] = True
        out.append(json.dumps(data, separators=(",", ":")))
    return out
