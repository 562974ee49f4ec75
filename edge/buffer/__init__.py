"""The edge buffer: a durable SQLite outbox of ShelfEvents, committed before any send.

Workflow, module by module:

1. Opening (:mod:`~edge.buffer.opening`): connect (:mod:`~edge.buffer.db`, the standard
   library's ``sqlite3`` with atomic transactions), check, migrate
   (:mod:`~edge.buffer.schema`), read the seq; a corrupt file is moved aside and its
   unsent rows salvaged (:mod:`~edge.buffer.recovery`), and the side mark
   (:mod:`~edge.buffer.seqmark`) keeps a new file numbering above every seq handed out.
2. Writing (:class:`~edge.buffer.store.Buffer`): decisions become ShelfEvents with the
   next seqs, in one transaction; with the disk full they are held in memory and
   written later.
3. Reading and acknowledging (:mod:`~edge.buffer.acks`): the sync side reads pending
   rows, marks what the cloud acknowledged, quarantines what it refused for good, and
   runs retention. Every statement lives in :mod:`~edge.buffer.rows`; every write goes
   through one error handling (busy, disk full, corruption).
4. Deciding (:mod:`~edge.buffer.policy`, no I/O): what to evict or expire, what to hold,
   which acks to believe. ``apply(config)`` hands a new ``[buffer]``
   (:mod:`~edge.buffer.config`) to the policies.
"""

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
