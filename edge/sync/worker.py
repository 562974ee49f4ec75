"""The sync worker: the thin shell that carries out :class:`~edge.sync.state.SyncState`.

Each :meth:`SyncWorker.step` asks the state for a transport and a batch size, reads
live and backlog candidates from the buffer, lets the state plan the batch, and sends
it. HTTP acks come in the reply; MQTT acks come on ``…/ack`` through
:meth:`handle_mqtt_ack`, and the worker waits for them (up to ``ack_timeout_s``)
before the next batch, so an unacked row is simply picked again. Every answer goes
to the state as values; the :class:`~edge.sync.state.Actions` it returns (mark
synced, quarantine, count) are carried out here on the buffer and health.

Failures wait as :class:`~edge.sync.backoff.Backoff` says: a jittered backoff capped
at ``backoff_max_s``, ended early by a probe of the cloud (``probe_s``) or by
:meth:`resume` (the broker link came back); a ``Retry-After`` is waited out in full.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from edge.buffer.policy import Batch
from edge.buffer.store import Buffer
from edge.health import Health
from edge.sync.backoff import Backoff, RetryWait
from edge.sync.config import SyncConfig
from edge.sync.state import MQTT_MAX_UNACKED, Actions, Refusal, SyncState
from edge.sync.transport import (
    SyncError,
    SyncRefused,
    SyncRejected,
    SyncUnavailable,
    Transport,
)
from models.wire import MqttAck

__all__ = ["MAINTAIN_EVERY_S", "MQTT_MAX_UNACKED", "SyncWorker"]

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 600.0


class SyncWorker:
    """Sends the outbox over one or more transports; thread-safe ack handling."""

    def __init__(
        self,
        buffer: Buffer,
        transports: Sequence[Transport],
        *,
        config: SyncConfig,
        health: Health | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.buffer = buffer
        self._transports = tuple(transports)
        self.config = config
        self.health = health or buffer.health
        self.device_id = buffer.device_id
        self._clock = clock
        self.state = SyncState(
            batch_size=config.batch_size,
            live_age_s=config.live_age_s,
            ack_timeout_s=config.ack_timeout_s,
        )
        self.backoff = Backoff(
            initial_s=config.backoff_initial_s, max_s=config.backoff_max_s, rng=rng
        )
        self._cond = threading.Condition()  # guards the state; MQTT acks come on paho's thread
        self.wake = threading.Event()
        self._resume = threading.Event()
        self._last_maintain = time.monotonic()
        self.last_quarantined = 0

    def apply(self, config: SyncConfig) -> None:
        """Take a new ``[sync]`` section (desired state): batching, live age and backoff.

        Transports and the mode are fixed at start; a change of those needs a restart.
        """
        self.config = config
        with self._cond:
            self.state.apply(
                batch_size=config.batch_size,
                live_age_s=config.live_age_s,
                ack_timeout_s=config.ack_timeout_s,
            )
        self.backoff.apply(initial_s=config.backoff_initial_s, max_s=config.backoff_max_s)

    @property
    def transports(self) -> tuple[Transport, ...]:
        """The transports given at construction, in order of preference (fixed from then on)."""
        return self._transports

    @property
    def highest_contiguous(self) -> int:
        """The highest contiguous seq the cloud has reported (never past what was sent)."""
        return self.state.highest_contiguous

    # -- carrying out actions --------------------------------------------------

    def _carry_out(self, out: Actions) -> int:
        """Mark, quarantine and count as ``out`` says; returns how many rows were marked.

        How many were quarantined is kept in ``last_quarantined``.
        """
        for name, n in out.counts.items():
            self.health.count(name, n)
        if out.counts.get("acks_unknown"):
            log.debug("ignored acks for %d seqs not in flight", out.counts["acks_unknown"])
        # quarantine first: a refused row must never be swept up by mark_through
        self.last_quarantined = sum(self.buffer.quarantine(q, why) for q, why in out.quarantine)
        done = len(out.mark)
        if out.mark:
            self.buffer.ack(out.mark)
        if out.mark_through is not None:
            done += self.buffer.ack_through(out.mark_through)
        if done:
            self.health.set("last_sync", self._clock())
        return done

    def handle_mqtt_ack(self, payload: bytes) -> int:
        """Apply an MqttAck from ``…/ack``; malformed or foreign acks are counted and ignored."""
        try:
            ack = MqttAck.model_validate_json(payload)
        except ValidationError:
            log.warning("malformed ack ignored (%d bytes)", len(payload))
            self.health.count("acks_malformed")
            return 0
        if ack.device_id != self.device_id:
            log.warning("ack for device %r ignored", ack.device_id)
            self.health.count("acks_foreign")
            return 0
        with self._cond:
            out = self.state.mqtt_ack(
                ack.highest_contiguous, ack.stored, [(r.seq, r.reason) for r in ack.refused]
            )
            self._cond.notify_all()
        return self._carry_out(out)

    # -- sending -------------------------------------------------------------

    def _transport(self) -> Transport | None:
        ready = [t for t in self.transports if t.available()]
        with self._cond:
            name = self.state.transport([t.name for t in ready], time.monotonic())
        return next((t for t in ready if t.name == name), None)

    def _next_batch(self) -> Batch | None:
        with self._cond:
            cut = self.state.cutoff(self._clock())
            size = self.state.batch_size()
        live = self.buffer.pending(size, since=cut)
        backlog = self.buffer.pending(size, before=cut)
        with self._cond:
            return self.state.plan(live, backlog, time.monotonic())

    def step(self) -> bool:
        """Send one batch; True when something was sent and acknowledged.

        Raises :class:`SyncError` when the transport fails (the caller backs off).
        """
        t = self._transport()
        if t is None:
            raise SyncUnavailable("no transport available")
        batch = self._next_batch()
        if batch is None:
            return False
        seqs = [r.seq for r in batch.rows]
        self.health.count("batches_sent")  # every try, whatever became of it
        try:
            replied = t.send(batch)
        except SyncRefused as err:
            why = Refusal(
                f"HTTP {err.status} {err.code}".strip() + f": {err}",
                index=err.index,
                whole_batch=err.whole_batch,
            )
            with self._cond:
                limit_before = self.state.limit
                out = self.state.refused(seqs, why)
            if not out.quarantine and self.state.limit != limit_before:
                log.info("batch of %d refused (%s); trying %s", len(seqs), err, self.state.limit)
            self._carry_out(out)
            return self.last_quarantined > 0 if out.quarantine else out.ok
        # events the transport took (HTTP: the cloud answered; MQTT: handed to the broker)
        self.health.count("historical_sent" if batch.historical else "live_sent", len(seqs))
        if t.acks_in_reply:
            with self._cond:
                out = self.state.replied(seqs, replied)
            return self._carry_out(out) > 0 or out.ok
        deadline = time.monotonic() + self.config.ack_timeout_s
        with self._cond:
            while self.state.waiting(seqs) and t.available():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            out = self.state.ack_wait_over(seqs, t.name, time.monotonic())
        self._carry_out(out)
        if "ack_timeouts" in out.counts:
            missing = len(self.state.waiting(seqs))
            log.info("%d of %d events not acked in time; they will be resent", missing, len(seqs))
            if not out.ok:  # the cloud is not answering: back off like any failure
                raise SyncUnavailable(f"no cloud ack within {self.config.ack_timeout_s} s")
        return out.ok

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``: send while there is work, wait when idle, back off on failure."""
        while not stop.is_set():
            try:
                sent = self.step()
            except SyncError as err:
                unreachable = isinstance(err, SyncUnavailable)
                wait = self.backoff.after_failure(
                    retry_after=err.retry_after if isinstance(err, SyncUnavailable) else None,
                    probe=unreachable,
                )
                self.health.count("sync_failures")
                self.health.set("sync_error", str(err))
                if isinstance(err, SyncRejected):
                    self.health.alarm("sync_rejected", str(err))
                log.info(
                    "sync failed (%s); retrying in %.1fs%s",
                    err,
                    wait.delay_s,
                    " or when the cloud answers again" if wait.probe else "",
                )
                self._wait(stop, wait)
                continue
            except Exception:
                log.exception("sync step crashed; backing off")
                self.health.count("sync_crashes")
                stop.wait(self.backoff.next_delay())
                continue
            self.backoff.reset()
            self.health.clear("sync_rejected")
            self.health.set("sync_error", None)
            self._housekeeping()
            if not sent:
                self.wake.wait(self.config.idle_s)
                self.wake.clear()

    def resume(self) -> None:
        """A way to the cloud came back (the broker link is up): end a backoff wait now."""
        self._resume.set()

    def _wait(self, stop: threading.Event, wait: RetryWait) -> None:
        """Sleep ``wait.delay_s``, ending early on ``stop``, :meth:`resume` or a good probe."""
        self._resume.clear()
        now = time.monotonic()
        end = now + wait.delay_s
        gap = self.config.probe_s
        next_probe = now + self.backoff.probe_gap(gap) if wait.probe else end
        while not stop.is_set():
            now = time.monotonic()
            if now >= end:
                return
            if now >= next_probe:
                if any(t.probe() for t in self.transports):
                    self.health.count("probes_answered")
                    log.info("the cloud answers again; retrying now")
                    return
                next_probe = time.monotonic() + self.backoff.probe_gap(gap)
                continue
            if self._resume.wait(max(0.0, min(end, next_probe, now + 0.5) - now)):
                self._resume.clear()
                log.info("a link to the cloud came back; retrying now")
                return

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_maintain >= MAINTAIN_EVERY_S:
            self._last_maintain = now
            self.buffer.maintain()
        if self.buffer.held:
            self.buffer.retry_held()

    def close(self) -> None:
        """Close every transport."""
        for t in self.transports:
            t.close()
