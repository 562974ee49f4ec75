"""SyncState in memory: unit cases, and a hypothesis state machine over any interleaving.

The machine keeps a model outbox (committed seqs, synced, quarantined) and a model
cloud (stored seqs, idempotent on seq; some seqs it refuses for good) and drives one
:class:`SyncState` with HTTP sends, lost replies, MQTT sends whose acks arrive late,
out of order or twice, refusals, ack waits that time out, and restarts. After every
step: each committed seq is exactly one of unsent, synced or quarantined; nothing is
marked synced that the cloud does not hold; nothing the cloud stores is quarantined
as refused. At the end an HTTP drain delivers every event the cloud accepts, once.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.buffer.policy import Batch, PendingRow
from edge.sync.state import Actions, Refusal, SyncState

NOW = 1_000_000.0


def rows(seqs: list[int], created: float = NOW) -> list[PendingRow]:
    return [PendingRow(s, created, "{}") for s in seqs]


def fresh(batch_size: int = 4) -> SyncState:
    return SyncState(batch_size=batch_size, live_age_s=60, ack_timeout_s=1)


# -- unit cases ------------------------------------------------------------------------


def test_http_reply_marks_only_what_was_in_flight() -> None:
    s = fresh()
    batch = s.plan(rows([1, 2, 3]), [], 0.0)
    assert batch is not None and [r.seq for r in batch.rows] == [1, 2, 3]
    out = s.replied([1, 2, 3], [1, 2, 3, 99])
    assert out.mark == [1, 2, 3] and out.counts == {"acks_unknown": 1} and out.ok
    assert s.replied([1, 2, 3], [1]).mark == []  # a duplicate reply: nothing new


def test_refusal_without_a_named_event_bisects_to_the_culprit() -> None:
    s = fresh(batch_size=8)
    bad = 6
    pending = list(range(1, 9))
    quarantined: list[int] = []
    for _ in range(10):
        live = [q for q in pending if q not in quarantined][: s.batch_size()]
        if not live:
            break
        b = s.plan(rows(live), [], 0.0)
        assert b is not None
        seqs = [r.seq for r in b.rows]
        if bad in seqs:
            out = s.refused(seqs, Refusal("HTTP 400 malformed_json"))
        else:
            out = s.replied(seqs, seqs)
            pending = [q for q in pending if q not in out.mark]
        for q, _reason in out.quarantine:
            quarantined += q
    assert quarantined == [bad] and s.limit is None
    assert s.batch_size() == 8  # full batches again once the culprit is out


def test_named_and_whole_batch_refusals() -> None:
    s = fresh()
    s.plan(rows([1, 2, 3]), [], 0.0)
    out = s.refused([1, 2, 3], Refusal("HTTP 422 x", index=1))
    assert out.quarantine == [([2], "HTTP 422 x")]
    s.plan(rows([1, 3]), [], 0.0)
    out = s.refused([1, 3], Refusal("HTTP 403 device_mismatch", whole_batch=True))
    assert out.quarantine == [([1, 3], "HTTP 403 device_mismatch")]


def test_mqtt_ack_keeps_the_highest_and_never_passes_what_was_sent() -> None:
    s = fresh(batch_size=100)
    s.plan(rows(list(range(1, 11))), [], 0.0)
    out = s.mqtt_ack(6, [4, 5, 6], [])
    assert out.mark == [1, 2, 3, 4, 5, 6] and out.mark_through == 6
    assert s.mqtt_ack(3, [1, 2, 3], []).mark_through is None  # late, lower: kept at 6
    assert s.mqtt_ack(500, [], []).mark_through == 10 and s.highest_contiguous == 10


def test_a_stalled_transport_yields_and_silence_quarantines_after_max_unacked() -> None:
    s = fresh()
    assert s.transport(["mqtt", "http"], 0.0) == "mqtt"
    for n in range(s.max_unacked):
        s.plan(rows([6, 7]), [], float(n))
        s.mqtt_ack(0, [7], [])
        out = s.ack_wait_over([6, 7], "mqtt", float(n))
    assert out.quarantine and out.quarantine[0][0] == [6]
    assert s.transport(["mqtt", "http"], 1.0) == "http"  # stalled for 3 ack timeouts
    assert s.transport(["mqtt"], 1.0) == "mqtt"  # but better than nothing
    assert s.transport(["mqtt", "http"], 100.0) == "mqtt"


# -- the state machine -----------------------------------------------------------------


class SyncMachine(RuleBasedStateMachine):
    """Any interleaving of sends, acks, duplicates, refusals and restarts."""

    def __init__(self) -> None:
        super().__init__()
        self.state = fresh()
        self.committed: list[int] = []
        self.synced: set[int] = set()
        self.quarantined: dict[int, str] = {}
        self.stored: set[int] = set()  # the cloud, idempotent on seq
        self.bad: set[int] = set()  # the cloud refuses these for good
        self.acks: list[tuple[int, list[int], list[tuple[int, str]]]] = []  # not yet delivered
        self.delivered: list[tuple[int, list[int], list[tuple[int, str]]]] = []
        self.last_mqtt: list[int] = []
        self.t = 0.0

    # the outbox, as the buffer keeps it
    def pending(self) -> list[int]:
        return [s for s in self.committed if s not in self.synced and s not in self.quarantined]

    def carry_out(self, out: Actions) -> None:
        for seqs, reason in out.quarantine:  # first, as the worker does
            for s in seqs:
                if s not in self.synced:
                    self.quarantined.setdefault(s, reason)
        for s in out.mark:
            if s not in self.quarantined:
                self.synced.add(s)
        if out.mark_through is not None:
            for s in self.pending():
                if s <= out.mark_through:
                    self.synced.add(s)

    def contiguous(self) -> int:
        n = 0
        while n + 1 in self.stored:  # a refused seq is a gap, as in the cloud
            n += 1
        return n

    def plan(self) -> Batch | None:
        self.t += 1.0
        return self.state.plan(rows(self.pending()[: self.state.batch_size()]), [], self.t)

    @rule(n=st.integers(1, 5), bad=st.booleans())
    def commit(self, n: int, bad: bool) -> None:
        start = len(self.committed) + 1
        new = list(range(start, start + n))
        self.committed += new
        if bad:
            self.bad.add(new[-1])

    @rule(lost_reply=st.booleans(), named=st.booleans())
    def send_http(self, lost_reply: bool, named: bool) -> None:
        batch = self.plan()
        if batch is None:
            return
        seqs = [r.seq for r in batch.rows]
        refused = [s for s in seqs if s in self.bad]
        if refused:
            index = seqs.index(refused[0]) if named else None
            self.carry_out(self.state.refused(seqs, Refusal("HTTP 422 refused", index=index)))
            return
        self.stored.update(seqs)
        if not lost_reply:  # a reply lost on the way: the rows are simply sent again
            self.carry_out(self.state.replied(seqs, seqs))

    @rule()
    def send_mqtt(self) -> None:
        batch = self.plan()
        if batch is None:
            return
        seqs = [r.seq for r in batch.rows]
        ok = [s for s in seqs if s not in self.bad]
        self.stored.update(ok)
        refused = [(s, "event_from_future") for s in seqs if s in self.bad]
        self.acks.append((self.contiguous(), ok, refused))
        self.last_mqtt = seqs

    @precondition(lambda self: self.acks)
    @rule(data=st.data())
    def deliver_ack(self, data: st.DataObject) -> None:
        ack = self.acks.pop(data.draw(st.integers(0, len(self.acks) - 1)))
        self.delivered.append(ack)
        self.carry_out(self.state.mqtt_ack(*ack))

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def duplicate_ack(self, data: st.DataObject) -> None:
        ack = data.draw(st.sampled_from(self.delivered))
        self.carry_out(self.state.mqtt_ack(*ack))

    @precondition(lambda self: self.last_mqtt)
    @rule()
    def ack_wait_over(self) -> None:
        self.carry_out(self.state.ack_wait_over(self.last_mqtt, "mqtt", self.t))
        self.last_mqtt = []

    @rule()
    def restart(self) -> None:
        self.state = fresh()
        self.last_mqtt = []

    @invariant()
    def every_seq_in_exactly_one_place(self) -> None:
        assert not (self.synced & set(self.quarantined))
        assert set(self.pending()) | self.synced | set(self.quarantined) == set(self.committed)

    @invariant()
    def nothing_marked_that_the_cloud_lacks(self) -> None:
        assert self.synced <= self.stored

    @invariant()
    def refusals_only_of_refused_events(self) -> None:
        for s, reason in self.quarantined.items():
            if "no cloud ack" not in reason:
                assert s in self.bad

    def teardown(self) -> None:
        """Drain over HTTP: every event the cloud accepts arrives; refused ones are out."""
        for _ in range(4 * len(self.committed) + 10):
            if not self.pending():
                break
            self.send_http(lost_reply=False, named=False)
        assert not self.pending()
        assert self.bad <= set(self.quarantined)
        assert self.synced == set(self.committed) - set(self.quarantined)
        assert self.synced <= self.stored


SyncMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_sync_state_machine = SyncMachine.TestCase
