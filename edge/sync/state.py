"""What the sync worker decides, as one pure class: values in, actions out.

Workflow of one step: :meth:`SyncState.transport` picks the way to the cloud (the
first available one whose cloud acks have not stalled), :meth:`SyncState.batch_size`
says how many rows to read, :meth:`SyncState.plan` chooses the batch (live and
backlog alternate) and records it as in flight. What comes back is handed in as
values, and each answer returns :class:`Actions` for the shell to carry out on the
outbox and the health counters:

- :meth:`replied` — the seqs an HTTP reply acknowledged;
- :meth:`refused` — a batch the cloud refuses for good: the named event, or else
  halves of the batch over the next steps (a bisection), until the single refused
  event is quarantined; a whole-batch refusal quarantines the batch;
- :meth:`mqtt_ack` — the cloud's ack on ``…/ack``: stored seqs, the highest
  contiguous seq (kept as the highest ever seen, since two ingest workers may answer
  out of order, and never past what was sent) and the events it refuses;
- :meth:`ack_wait_over` — the MQTT ack wait ended: a transport whose acks stopped
  yields to the next one for a while, and an event left unacked ``max_unacked``
  times while its neighbours were acked is quarantined.

Only acknowledgements of seqs in flight are believed (:class:`AckLedger`). Nothing
here reads a clock, a file or a socket; :class:`edge.sync.worker.SyncWorker` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.buffer.policy import AckLedger, Batch, BatchPlanner, PendingRow

MQTT_MAX_UNACKED = 5  # sends of one event left unacked while others were, before quarantine


@dataclass
class Actions:
    """What the shell must do after an answer: mark synced, quarantine, count."""

    mark: list[int] = field(default_factory=list)  # seqs acknowledged: synced
    mark_through: int | None = None  # every unsent row up to here is synced too
    quarantine: list[tuple[list[int], str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    ok: bool = False  # the answer moved something forward

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


@dataclass(frozen=True)
class Refusal:
    """A refusal of a whole batch, as values: what the cloud said and which event it named."""

    reason: str
    index: int | None = None
    whole_batch: bool = False


class SyncState:
    """The sync worker's bookkeeping: in flight, bisection, unacked counts, stalls, acks."""

    def __init__(
        self,
        *,
        batch_size: int,
        live_age_s: float,
        ack_timeout_s: float,
        max_unacked: int = MQTT_MAX_UNACKED,
    ) -> None:
        self.planner = BatchPlanner(live_age_s=live_age_s)
        self.ledger = AckLedger()
        self.max_batch = batch_size
        self.ack_timeout_s = ack_timeout_s
        self.max_unacked = max_unacked
        self.highest_contiguous = 0  # the highest the cloud has reported (never past sent)
        self.max_sent = 0
        self.limit: int | None = None  # batch size cap while bisecting a refused batch
        self.bisect_end: int | None = None  # last seq of the batch being bisected
        self.unacked: dict[int, int] = {}  # MQTT: seq -> sends left unacked
        self.stalled: dict[str, float] = {}  # transport -> until when it yields

    def apply(self, *, batch_size: int, live_age_s: float, ack_timeout_s: float) -> None:
        """Take new bounds (a config change)."""
        self.max_batch = batch_size
        self.planner.apply(live_age_s=live_age_s)
        self.ack_timeout_s = ack_timeout_s

    # -- choosing ------------------------------------------------------------

    def transport(self, available: Sequence[str], now: float) -> str | None:
        """The first available transport not stalled, else the first available one."""
        for name in available:
            if self.stalled.get(name, 0.0) <= now:
                return name
        return available[0] if available else None

    def batch_size(self) -> int:
        """How many rows the next batch may hold (fewer while bisecting)."""
        if self.limit is None:
            return self.max_batch
        return max(1, min(self.limit, self.max_batch))

    def cutoff(self, now: float) -> float:
        """Rows created before this wall time are backlog."""
        return self.planner.cutoff(now)

    def plan(self, live: list[PendingRow], backlog: list[PendingRow], now: float) -> Batch | None:
        """Choose the next batch and record it as in flight (``now``: a monotonic time)."""
        batch = self.planner.choose(live, backlog)
        if batch is not None:
            seqs = [r.seq for r in batch.rows]
            self.ledger.sent(seqs, now)
            self.max_sent = max(self.max_sent, max(seqs))
        return batch

    # -- answers -------------------------------------------------------------

    def _believe(self, out: Actions, seqs: Sequence[int], through: int | None = None) -> None:
        res = self.ledger.accept(seqs)
        accepted = list(res.accepted)
        if through is not None:
            accepted += self.ledger.accept_through(through)
        ignored = [s for s in res.ignored if through is None or s > through]
        out.count("acks_unknown", len(ignored))
        out.mark += sorted(accepted)
        out.ok = out.ok or bool(accepted)

    def replied(self, batch: Sequence[int], acked: Sequence[int]) -> Actions:
        """An HTTP reply to ``batch`` acknowledged ``acked``."""
        out = Actions()
        self._believe(out, acked)
        if out.mark and self.bisect_end in batch:
            self._end_bisect()  # the refused batch got through without a culprit
        return out

    def refused(self, batch: Sequence[int], why: Refusal) -> Actions:
        """The cloud refuses ``batch`` for good: narrow it down, quarantine only the culprit."""
        out = Actions()
        self.ledger.accept(batch)  # nothing is in flight any more
        out.count("batches_refused")
        if why.whole_batch or len(batch) == 1:
            bad = list(batch)
        elif why.index is not None and 0 <= why.index < len(batch):
            bad = [batch[why.index]]
        else:  # no event named: halve the batch; the next step sends its first half
            self.limit = max(1, len(batch) // 2)
            if self.bisect_end is None:
                self.bisect_end = batch[-1]
            out.ok = True
            return out
        out.quarantine.append((bad, why.reason))
        out.ok = True
        self._end_bisect()  # the culprit is out: full batches again
        return out

    def _end_bisect(self) -> None:
        self.limit = None
        self.bisect_end = None

    def mqtt_ack(
        self, highest_contiguous: int, stored: Sequence[int], refused: Sequence[tuple[int, str]]
    ) -> Actions:
        """The cloud's ack on ``…/ack`` (device already checked)."""
        out = Actions()
        if refused:
            seqs = [s for s, _ in refused]
            flying = set(self.ledger.waiting(seqs))
            self.ledger.accept(sorted(flying))
            out.count("acks_unknown", len(set(seqs) - flying))
            for s, reason in refused:
                if s in flying:
                    flying.discard(s)
                    self.unacked.pop(s, None)
                    out.quarantine.append(([s], f"MQTT: refused by the cloud: {reason}"))
        self._believe(out, stored, highest_contiguous)
        through = min(highest_contiguous, self.max_sent)
        if through > self.highest_contiguous:
            # rows resent or sent by an earlier run that the cloud already holds
            self.highest_contiguous = through
            out.mark_through = through
        return out

    def waiting(self, seqs: Sequence[int]) -> list[int]:
        """Those of ``seqs`` still waiting for the cloud's ack."""
        return self.ledger.waiting(seqs)

    def ack_wait_over(self, seqs: Sequence[int], transport: str, now: float) -> Actions:
        """The wait for MQTT acks of ``seqs`` ended at ``now`` (monotonic): judge the silence."""
        out = Actions()
        missing = self.ledger.waiting(seqs)
        done = len(seqs) - len(missing)
        out.ok = done > 0
        for s in seqs:
            if s not in missing:
                self.unacked.pop(s, None)
        if len(self.unacked) > 4 * self.max_batch:  # acked since by highest_contiguous
            for s in [s for s in self.unacked if s <= self.highest_contiguous]:
                del self.unacked[s]
        if not missing:
            return out
        # no cloud ack in time: prefer another transport for a while (mode both)
        self.stalled[transport] = now + 3 * self.ack_timeout_s
        out.count("ack_timeouts")
        if done == 0:
            return out  # the cloud is not answering at all: not the events' fault
        bad = []
        for s in missing:
            n = self.unacked.get(s, 0) + 1
            self.unacked[s] = n
            if n >= self.max_unacked:
                bad.append(s)
        if bad:
            self.ledger.accept(bad)
            for s in bad:
                self.unacked.pop(s, None)
            reason = f"MQTT: no cloud ack after {self.max_unacked} sends while others were acked"
            out.quarantine.append((bad, reason))
        return out

    def restart(self) -> None:
        """A new process: nothing is in flight; the outbox still holds every unsent row."""
        self.ledger.clear()
        self.unacked.clear()
        self.stalled.clear()
        self._end_bisect()
