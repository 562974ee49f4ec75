"""The edge buffer: a durable SQLite outbox of ShelfEvents (see :mod:`edge.buffer.store`)."""

from edge.buffer.config import BufferConfig
from edge.buffer.policy import AckLedger, Batch, BatchPlanner, PendingRow, RetentionPolicy
from edge.buffer.rows import RejectedRow
from edge.buffer.store import Buffer, BufferStats, EventInvalid, OutboxError

__all__ = [
    "AckLedger",
    "Batch",
    "BatchPlanner",
    "Buffer",
    "BufferConfig",
    "BufferStats",
    "EventInvalid",
    "OutboxError",
    "PendingRow",
    "RejectedRow",
    "RetentionPolicy",
]
