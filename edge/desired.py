"""Desired state from the cloud: a model version and config overrides, validated and applied.

The cloud keeps a retained JSON document on ``shelfsense/<id>/desired`` (and serves
it at ``GET /v1/devices/<id>/desired`` for units without a broker), one dialect
defined in :class:`models.wire_fleet.DesiredState`::

    {"device_id": "unit-7", "model_version": 5,
     "config": {"sync.batch_size": 100, "health.interval_s": 10},
     "updated_at": "2026-12-05T07:00:00"}

:class:`DesiredStateHandler` validates it, checks it is addressed to this unit and
newer than the one applied (``updated_at``), expands the dotted keys, merges them into
the running config, validates the result as a whole and hands it to ``on_config``; a
new model version goes to ``on_model`` (the OTA client). Anything malformed, addressed
elsewhere, older, touching keys that may not change remotely, or failing validation is
logged, counted and ignored.
:class:`DesiredPoller` fetches the document over HTTP on a timer (whenever the unit
has an HTTP transport, broker or not); the same document arriving both ways is
applied once.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from edge.config import Config, parse_config
from edge.errors import ConfigError
from edge.health import Health
from edge.sync.transport import SyncError
from models.wire_fleet import DesiredState

log = logging.getLogger(__name__)

# Sections the cloud may change live; identity and hardware wiring stay local.
REMOTE_SECTIONS = frozenset({"sync", "health", "buffer", "slots"})


def expand_dotted(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"sync.batch_size": 1}`` as ``{"sync": {"batch_size": 1}}``; nested keys kept as they are."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf] = merge(node[leaf], value)
        else:
            node[leaf] = copy.deepcopy(value)
    return out


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (lists and scalars replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class DesiredStateHandler:
    """Validates desired-state documents and applies them through callbacks.

    ``on_config(new_config)`` gets a fully validated :class:`Config`; ``on_model(version)``
    gets a model version different from the last one handed over.
    """

    def __init__(
        self,
        config: Config,
        *,
        health: Health,
        on_config: Callable[[Config], None] | None = None,
        on_model: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.health = health
        self.on_config = on_config
        self.on_model = on_model
        self.applied_at: datetime | None = None
        self.model_version: int | None = None
        self.shadow: tuple[int | None, float | None] = (None, None)  # asked with model_version
        self._digest = ""
        self._lock = threading.Lock()

    def _reject(self, counter: str, why: str) -> bool:
        log.warning("desired state ignored: %s", why)
        self.health.count(counter)
        self.health.set("desired_error", why)
        return False

    def handle(self, payload: bytes | str | Mapping[str, Any], *, source: str = "mqtt") -> bool:
        """Apply one document; True when it changed something."""
        raw = payload if isinstance(payload, bytes | str) else None
        digest = hashlib.sha256(
            raw if isinstance(raw, bytes) else str(payload).encode()
        ).hexdigest()
        with self._lock:
            if digest == self._digest:
                return False  # same document again (retained re-delivery, poll)
            try:
                if isinstance(payload, Mapping):
                    doc = DesiredState.model_validate(payload)
                else:
                    doc = DesiredState.model_validate_json(payload)
            except ValidationError as err:
                return self._reject("desired_malformed", f"{source}: {err.errors()[0]['msg']}")
            unit_id = self.config.unit.device_id
            if doc.device_id != unit_id:
                return self._reject(
                    "desired_unauthorised", f"{source}: addressed to {doc.device_id!r}"
                )
            if doc.updated_at and self.applied_at and _aware(doc.updated_at) < self.applied_at:
                return self._reject(
                    "desired_stale", f"{source}: updated {doc.updated_at} < {self.applied_at}"
                )
            overrides = expand_dotted(doc.config)
            bad = sorted(set(overrides) - REMOTE_SECTIONS)
            if bad:
                return self._reject(
                    "desired_unauthorised", f"{source}: may not change {', '.join(bad)}"
                )
            changed = False
            if overrides:
                data = merge(self.config.model_dump(mode="json"), overrides)
                try:
                    new = parse_config(
                        data, source=f"desired state of {doc.updated_at or '(no time)'}"
                    )
                except ConfigError as err:
                    return self._reject("desired_invalid", str(err))
                if new != self.config:
                    self.config = new
                    changed = True
                    self.health.count("desired_config_applied")
                    if self.on_config:
                        self.on_config(new)
            if doc.model_version is not None and doc.model_version != self.model_version:
                self.model_version = doc.model_version
                self.shadow = (doc.shadow_windows, doc.min_shadow_agreement)
                self.health.set("desired_model_version", doc.model_version)
                changed = True
                if self.on_model:
                    self.on_model(doc.model_version)
            if doc.updated_at:
                self.applied_at = _aware(doc.updated_at)
            self._digest = digest
            self.health.set("desired_updated_at", doc.updated_at and doc.updated_at.isoformat())
            return changed


def _aware(t: datetime) -> datetime:
    """``t`` with UTC assumed when it carries no zone (the cloud stores naive UTC)."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class DesiredPoller:
    """Polls the desired state over HTTP every ``interval_s`` (units with an HTTP transport)."""

    def __init__(
        self,
        fetch: Callable[[], Any | None],
        handler: DesiredStateHandler,
        *,
        interval_s: float,
    ) -> None:
        self.fetch = fetch
        self.handler = handler
        self.interval_s = interval_s

    def poll_once(self) -> bool:
        """Fetch and apply once; True when something changed."""
        try:
            doc = self.fetch()
        except SyncError as err:
            log.info("desired state poll failed: %s", err)
            self.handler.health.count("desired_poll_failures")
            return False
        if doc is None:
            return False
        return self.handler.handle(doc, source="http")

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop``."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("desired state poll crashed")
            stop.wait(self.interval_s)
