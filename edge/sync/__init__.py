"""Sync: the outbox to the cloud over HTTP and/or MQTT, rows leaving only on the cloud's ack."""

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
