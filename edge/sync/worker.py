"""The sync worker: moves outbox rows to the cloud and marks them synced on its acks.

Each :meth:`SyncWorker.step` asks the buffer for live and backlog candidates, lets
:class:`~edge.buffer.policy.BatchPlanner` pick the next batch, records it in the
:class:`~edge.buffer.policy.AckLedger`, and sends it over the first available
transport (MQTT while connected, else HTTP in ``both`` mode). HTTP acks come in the
reply; MQTT acks come on ``…/ack`` through :meth:`handle_mqtt_ack`, and the worker
waits for them (up to ``ack_timeout_s``) before the next batch, so an unacked row is
simply picked again; in ``both`` mode a broker whose cloud acks stop coming yields to
HTTP for a while. Failures back off exponentially with jitter.

Acks: the highest ``highest_contiguous`` seen is kept (acks of two cloud ingest
workers can arrive out of order) and every unsent row up to it leaves the outbox, so
resends the cloud already had are acked too. Refusals: a batch the cloud refuses for
good (:class:`SyncRefused`) is narrowed down, not resent forever: the event the
answer names, or else halves of the batch (a bisection over the next steps), until
the single refused event is quarantined in the buffer; a whole-batch refusal
(another device's events) quarantines the batch. Over MQTT the cloud's ack lists the
events it refuses (``refused``, with the reason) and they are quarantined at once; one
whose refusal cannot reach the unit (its seq unreadable), left unacked
``MQTT_MAX_UNACKED`` times while its neighbours were acked, is quarantined too.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from edge.buffer.policy import AckLedger, Batch, BatchPlanner
from edge.buffer.store import Buffer
from edge.health import Health
from edge.sync.backoff import Backoff, RetryWait
from edge.sync.config import SyncConfig
from edge.sync.transport import (
    SyncError,
    SyncRefused,
    SyncRejected,
    SyncUnavailable,
    Transport,
)
from models.wire import MqttAck, Refusal

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 600.0
MQTT_MAX_UNACKED = 5  # sends of one event left unacked while others were, before quarantine


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
        self.transports = list(transports)
        self.config = config
        self.health = health or buffer.health
        self.device_id = buffer.device_id
        self._clock = clock
        self.planner = BatchPlanner(live_age_s=config.live_age_s)
        self.ledger = AckLedger()
        self.backoff = Backoff(
            initial_s=config.backoff_initial_s, max_s=config.backoff_max_s, rng=rng
        )
        self._cond = threading.Condition()
        self.wake = threading.Event()
        self._resume = threading.Event()
        self._last_maintain = time.monotonic()
        self._stalled: dict[str, float] = {}
        self.highest_contiguous = 0  # the highest the cloud has reported
        self._max_sent = 0
        self._limit: int | None = None  # batch size cap while bisecting a refused batch
        self._bisect_end: int | None = None  # last seq of the batch being bisected
        self._unacked: dict[int, int] = {}  # MQTT: seq -> sends left unacked

    def apply(self, config: SyncConfig) -> None:
        """Take a new ``[sync]`` section (desired state): batching, live age and backoff.

        Transports and the mode are fixed at start; a change of those needs a restart.
        """
        self.config = config
        self.planner.live_age_s = config.live_age_s
        self.backoff.apply(initial_s=config.backoff_initial_s, max_s=config.backoff_max_s)

    # -- acknowledgements -----------------------------------------------------

    def _apply(self, seqs: Sequence[int], through: int | None = None) -> int:
        with self._cond:
            res = self.ledger.accept(seqs)
            accepted = list(res.accepted)
            if through is not None:
                accepted += self.ledger.accept_through(through)
            ignored = [s for s in res.ignored if through is None or s > through]
            self._cond.notify_all()
        if ignored:
            log.debug("ignored acks for %d seqs not in flight", len(ignored))
            self.health.count("acks_unknown", len(ignored))
        if accepted:
            self.buffer.ack(sorted(accepted))
            self.health.set("last_sync", self._clock())
        return len(accepted)

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
        if ack.refused:
            self._refused_over_mqtt(ack.refused)
        done = self._apply(ack.stored, ack.highest_contiguous)
        with self._cond:
            through = min(ack.highest_contiguous, self._max_sent)
            advance = through > self.highest_contiguous
            if advance:
                self.highest_contiguous = through
        if advance:  # rows resent or sent by an earlier run that the cloud already holds
            extra = self.buffer.ack_through(through)
            if extra:
                self.health.set("last_sync", self._clock())
            done += extra
        return done

    def _refused_over_mqtt(self, refusals: Sequence[Refusal]) -> None:
        """Quarantine events in flight the cloud says it will never store; others are ignored."""
        with self._cond:
            flying = set(self.ledger.waiting([r.seq for r in refusals]))
            self.ledger.accept(sorted(flying))
            self._cond.notify_all()
        unknown = len({r.seq for r in refusals} - flying)
        if unknown:
            log.warning("refusals of %d seqs not in flight ignored", unknown)
            self.health.count("acks_unknown", unknown)
        for r in refusals:
            if r.seq in flying:
                flying.discard(r.seq)
                self._unacked.pop(r.seq, None)
                self.buffer.quarantine([r.seq], f"MQTT: refused by the cloud: {r.reason}")

    # -- sending -------------------------------------------------------------

    def _transport(self) -> Transport | None:
        now = time.monotonic()
        ready = [t for t in self.transports if t.available()]
        for t in ready:  # a transport whose acks stopped coming yields to the next one
            if self._stalled.get(t.name, 0.0) <= now:
                return t
        return ready[0] if ready else None

    def next_batch(self) -> Batch | None:
        """The next batch to send: live and backlog alternate (see BatchPlanner)."""
        cut = self.planner.cutoff(self._clock())
        size = self.config.batch_size
        if self._limit is not None:
            size = max(1, min(self._limit, size))
        live = self.buffer.pending(size, since=cut)
        backlog = self.buffer.pending(size, before=cut)
        return self.planner.choose(live, backlog)

    def step(self) -> bool:
        """Send one batch; True when something was sent and acknowledged.

        Raises :class:`SyncError` when the transport fails (the caller backs off).
        """
        t = self._transport()
        if t is None:
            raise SyncUnavailable("no transport available")
        batch = self.next_batch()
        if batch is None:
            return False
        seqs = [r.seq for r in batch.rows]
        with self._cond:
            self.ledger.sent(seqs, time.monotonic())
            self._max_sent = max(self._max_sent, max(seqs))
        self.health.count("batches_sent")  # every try, whatever became of it
        try:
            replied = t.send(batch)
        except SyncRefused as err:
            return self._refused(batch, err)
        # events the transport took (HTTP: the cloud answered; MQTT: handed to the broker)
        self.health.count("historical_sent" if batch.historical else "live_sent", len(seqs))
        if t.acks_in_reply:
            done = self._apply(replied)
            if done and self._bisect_end in seqs:
                self._end_bisect()  # the refused batch got through without a culprit
        else:
            deadline = time.monotonic() + self.config.ack_timeout_s
            with self._cond:
                while self.ledger.waiting(seqs) and t.available():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, 0.5))
                missing = len(self.ledger.waiting(seqs))
            done = len(seqs) - missing
            self._count_unacked(seqs, done)
            if missing:
                # no cloud ack in time: prefer another transport for a while (mode both)
                self._stalled[t.name] = time.monotonic() + 3 * self.config.ack_timeout_s
                self.health.count("ack_timeouts")
                log.info(
                    "%d of %d events not acked in time; they will be resent", missing, len(seqs)
                )
                if done == 0:  # the cloud is not answering: back off like any failure
                    raise SyncUnavailable(f"no cloud ack within {self.config.ack_timeout_s} s")
        return done > 0

    def _end_bisect(self) -> None:
        self._limit = None
        self._bisect_end = None

    def _refused(self, batch: Batch, err: SyncRefused) -> bool:
        """Narrow a refused batch down to what the cloud refuses, and quarantine only that."""
        rows = batch.rows
        seqs = [r.seq for r in rows]
        with self._cond:
            self.ledger.accept(seqs)  # nothing is in flight any more
        self.health.count("batches_refused")
        reason = f"HTTP {err.status} {err.code}".strip()
        if err.whole_batch or len(rows) == 1:
            bad = seqs
        elif err.index is not None and 0 <= err.index < len(rows):
            bad = [seqs[err.index]]
        else:  # no event named: halve the batch; the next step sends its first half
            self._limit = max(1, len(rows) // 2)
            if self._bisect_end is None:
                self._bisect_end = seqs[-1]
            log.info("batch of %d refused (%s); trying %d", len(rows), reason, self._limit)
            return True
        moved = self.buffer.quarantine(bad, f"{reason}: {err}")
        self._end_bisect()  # the culprit is out: full batches again
        return moved > 0

    def _count_unacked(self, seqs: list[int], done: int) -> None:
        """MQTT: quarantine events the cloud keeps silent about while it acks their neighbours."""
        with self._cond:
            missing = self.ledger.waiting(seqs)
        for s in seqs:
            if s not in missing:
                self._unacked.pop(s, None)
        if len(self._unacked) > 4 * self.config.batch_size:  # acked since by highest_contiguous
            for s in [s for s in self._unacked if s <= self.highest_contiguous]:
                del self._unacked[s]
        if not missing or done == 0:
            return  # all acked, or the cloud is not answering at all: not the events' fault
        bad = []
        for s in missing:
            n = self._unacked.get(s, 0) + 1
            self._unacked[s] = n
            if n >= MQTT_MAX_UNACKED:
                bad.append(s)
        if bad:
            with self._cond:
                self.ledger.accept(bad)
            for s in bad:
                self._unacked.pop(s, None)
            self.buffer.quarantine(
                bad, f"MQTT: no cloud ack after {MQTT_MAX_UNACKED} sends while others were acked"
            )

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
