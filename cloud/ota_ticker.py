"""The service's background work for OTA: advance rollouts and keep the TUF timestamp fresh.

One thread per app, every ``rollout_tick_s`` seconds: :func:`cloud.rollouts.tick`
(publishing the desired states it changes) and :meth:`TufRepository.refresh`. A
failed round is logged and the next one runs as usual.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from cloud import rollouts
from cloud.settings import CloudSettings
from cloud.store import Store
from cloud.tuf_repo import TufRepository

log = logging.getLogger(__name__)


class RolloutTicker:
    """A daemon thread that runs :meth:`run_once` every ``interval`` seconds until stopped."""

    def __init__(self, settings: CloudSettings, store: Store, *, publisher: Any = None) -> None:
        self.interval = settings.rollout_tick_s
        self.store = store
        self.repo = TufRepository.from_settings(settings)
        self.publisher = publisher
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """One round: rollouts, then the timestamp."""
        for state in rollouts.tick(self.store):
            if self.publisher is not None:
                self.publisher.publish(state)
        self.repo.refresh()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # a bad round must not end the thread
                log.exception("rollout tick failed")

    def start(self) -> None:
        """Start the thread (nothing when the interval is 0)."""
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rollout-ticker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
