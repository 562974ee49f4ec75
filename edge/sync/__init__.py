"""Sync: the outbox to the cloud over HTTP and/or MQTT, rows leaving only on the cloud's ack.

Workflow, module by module:

1. :mod:`~edge.sync.config` (``[sync]``) and :mod:`~edge.sync.identity` (device id,
   key, broker login) say where and as whom; :mod:`~edge.sync.endpoints` names every
   path and topic.
2. :class:`~edge.sync.worker.SyncWorker`, built in one step with its transports
   (:mod:`~edge.sync.http`, :mod:`~edge.sync.mqtt`; the interface and its errors in
   :mod:`~edge.sync.transport`), loops: ask :class:`~edge.sync.state.SyncState` which
   transport and how many rows, read live and backlog rows from the buffer, let the
   state plan the batch, send it.
3. Every answer (an HTTP reply, an MQTT ack, a refusal, a timeout) goes back to the
   state as values; the :class:`~edge.sync.state.Actions` it returns (mark these seqs,
   mark through N, quarantine those, count this) are carried out on the outbox.
4. On failure :mod:`~edge.sync.backoff` says how long to wait (capped and jittered,
   the cloud's ``Retry-After`` kept); a health probe or the broker link coming back
   ends the wait early. ``apply(config)`` hands a new ``[sync]`` to the worker, which
   passes each part its own fields.
"""

from edge.sync.backoff import Backoff
from edge.sync.config import SyncConfig
from edge.sync.identity import Identity, IdentityError, load_identity
from edge.sync.transport import (
    SyncError,
    SyncRefused,
    SyncRejected,
    SyncUnavailable,
    Transport,
)

__all__ = [
    "Backoff",
    "Identity",
    "IdentityError",
    "SyncConfig",
    "SyncError",
    "SyncRefused",
    "SyncRejected",
    "SyncUnavailable",
    "Transport",
    "load_identity",
]
