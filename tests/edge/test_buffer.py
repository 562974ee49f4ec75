"""The outbox on real SQLite files: seqs, durability across reopen, acks, retention, faults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.buffer import Buffer, BufferConfig, EventInvalid
from edge.buffer.schema import LATEST, schema_version
from edge.buffer.seqmark import read_mark
from edge.health import BUFFER_FULL, DB_CORRUPTED, DISK_FULL, Health
from tests.edge.conftest import Buffers
from tests.edge.events_support import event_fields


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def open_buffer(buffers: Buffers, path: Path, **cfg: object) -> Buffer:
    return buffers.open(path, device_id="unit-1", config=BufferConfig(**cfg), health=Health())  # type: ignore[arg-type]


def test_seq_grows_and_survives_reopen(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db)
    first = buf.append_many([event_fields(i) for i in range(3)])
    assert [e.seq for e in first] == [1, 2, 3]
    assert all(e.device_id == "unit-1" for e in first)
    buf.close()
    buf = open_buffer(buffers, db)
    assert buf.append(event_fields(9)).seq == 4
    assert [r.seq for r in buf.pending(10)] == [1, 2, 3, 4]
    assert schema_version(buf.db) == LATEST
    assert read_mark(buf.mark_path) >= 4


def test_seq_not_reused_after_rows_are_gone(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db, keep_synced_days=0)
    buf.append_many([event_fields(i) for i in range(5)])
    assert buf.ack([1, 2, 3, 4, 5]) == 5
    assert buf.maintain() == 5
    buf.close()
    assert open_buffer(buffers, db).append(event_fields(0)).seq == 6
    # even when the database file itself is deleted, the side mark keeps seqs growing
    for p in tmp_path.glob("b.db*"):
        if not p.name.endswith(".seq"):
            p.unlink()
    assert open_buffer(buffers, db).append(event_fields(0)).seq > 6


def test_pending_oldest_first_and_ack_ignores_unknown(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db")
    buf.append_many([event_fields(i) for i in range(6)])
    assert [r.seq for r in buf.pending(3)] == [1, 2, 3]
    assert buf.ack([2, 3, 99, 3]) == 2
    assert buf.health.counter("acks_ignored") == 1  # 99 is unknown; a repeated 3 is one seq
    assert buf.ack([2]) == 0  # already synced
    assert buf.health.counter("acks_ignored") == 2
    assert [r.seq for r in buf.pending(10)] == [1, 4, 5, 6]
    assert buf.stats().depth == 4


def test_live_and_backlog_queries(tmp_path: Path, buffers: Buffers) -> None:
    clock = Clock()
    buf = buffers.open(tmp_path / "b.db", device_id="unit-1", clock=clock)
    buf.append_many([event_fields(i) for i in range(4)])  # old
    clock.t += 3600
    buf.append_many([event_fields(i) for i in range(3)])  # fresh
    cut = clock.t - 60
    assert [r.seq for r in buf.pending(10, before=cut)] == [1, 2, 3, 4]
    assert [r.seq for r in buf.pending(2, since=cut)] == [5, 6]  # live, oldest first


def test_invalid_event_counted_and_skipped(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db")
    bad = {**event_fields(0), "confidence": 7.0}
    out = buf.append_many([event_fields(1), bad, event_fields(2)])
    assert [e.seq for e in out] == [1, 2]
    assert buf.health.counter("events_invalid") == 1
    with pytest.raises(EventInvalid):
        buf.append(bad)


def test_a_window_the_wire_refuses_is_left_off_not_the_decision(
    tmp_path: Path, buffers: Buffers
) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db")
    window = {"bay": "bay-1", "episode": 3, "t_start": 0.0, "t_end": 1.0, "hour": 9}
    too_big = {
        **window,
        "reaches": [
            {
                "zone": "slot-0",
                "t_enter": 0.0,
                "t_leave": 1.0,
                "dwell": 1.0,
                "peak_motion": 0.1,
                "entries": 1,
            }
        ]
        * 65,
    }
    ok, cut = buf.append_many(
        [{**event_fields(1), "window": window}, {**event_fields(2), "window": too_big}]
    )
    assert ok.window is not None and ok.window.hour == 9
    assert cut.window is None and cut.label == event_fields(2)["label"]
    assert buf.health.counter("windows_dropped") == 1 and buf.health.counter("events_invalid") == 0
    assert [r.seq for r in buf.pending(10)] == [1, 2]


def test_retention_deletes_only_old_synced_rows(tmp_path: Path, buffers: Buffers) -> None:
    clock = Clock()
    buf = buffers.open(
        tmp_path / "b.db",
        device_id="unit-1",
        config=BufferConfig(keep_synced_days=1),
        clock=clock,
    )
    buf.append_many([event_fields(i) for i in range(4)])
    buf.ack([1, 2])
    clock.t += 2 * 86400
    buf.ack([3])
    assert buf.maintain() == 2  # 1 and 2 expired; 3 synced just now; 4 unsent
    assert [r.seq for r in buf.pending(10)] == [4]
    assert buf.stats().synced_rows == 1


def fill(buf: Buffer, n: int, start: int = 0) -> list[int]:
    out: list[int] = []
    for i in range(start, start + n, 10):
        out += [e.seq for e in buf.append_many([event_fields(k) for k in range(i, i + 10)])]
    return out


def test_cap_evicts_synced_first_then_drops_new(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db", max_mb=0.25)
    seqs = fill(buf, 2000)
    assert buf.health.counter("events_dropped") > 0  # the cap bound
    assert buf.health.alarmed(BUFFER_FULL)
    kept = [r.seq for r in buf.pending(10_000)]
    assert kept == seqs  # no unsent event was evicted, and all admitted are there
    dropped_before = buf.health.counter("events_dropped")
    buf.ack(kept[: len(kept) // 2])  # half synced: room can be made from those
    more = fill(buf, 50, start=5000)
    assert len(more) == 50
    assert buf.health.counter("events_dropped") == dropped_before
    assert buf.health.counter("synced_evicted") > 0
    assert not buf.health.alarmed(BUFFER_FULL)
    assert [r.seq for r in buf.pending(10_000)] == kept[len(kept) // 2 :] + more


def test_cap_policy_evict_unsynced_oldest(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db", max_mb=0.25, on_full="evict_unsynced_oldest")
    seqs = fill(buf, 2000)
    assert len(seqs) == 2000 and buf.health.counter("events_dropped") == 0
    assert buf.health.counter("unsynced_evicted") > 0
    pending = [r.seq for r in buf.pending(10_000)]
    assert pending == seqs[-len(pending) :]  # the oldest went
    assert buf.health.alarmed(BUFFER_FULL)


def corrupt(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(b"\x00" * 100)  # destroy the header


def test_corrupt_file_moved_aside_and_seq_keeps_growing(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db)
    buf.append_many([event_fields(i) for i in range(7)])
    buf.close()
    corrupt(db)
    buf = open_buffer(buffers, db)
    aside = list(tmp_path.glob("b.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0
    assert buf.health.alarmed(DB_CORRUPTED)
    assert buf.append(event_fields(0)).seq > 7


def test_corrupt_pages_salvage_unsent_rows(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db)
    buf.append_many([event_fields(i) for i in range(3000)])
    buf.ack(list(range(1, 1001)))
    buf.close()
    size = db.stat().st_size
    with open(db, "r+b") as f:  # smash a page near the end, keep the header
        f.seek(size - 3 * 4096)
        f.write(b"\xff" * 4096)
    buf = open_buffer(buffers, db)
    assert buf.health.alarmed(DB_CORRUPTED)
    assert list(tmp_path.glob("b.db.corrupt-*"))
    nxt = buf.append(event_fields(0)).seq
    assert nxt > 3000
    pending = [r.seq for r in buf.pending(10_000)]
    assert len(pending) == len(set(pending))
    assert all(s > 1000 for s in pending)  # nothing synced came back as unsent


def test_disk_full_holds_in_memory_then_resumes(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db", retry_full_s=3600)
    buf.append_many([event_fields(i) for i in range(5)])
    pages = buf.db.execute("PRAGMA page_count").fetchone()[0]
    buf.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now reports SQLITE_FULL
    held = []
    for i in range(40):
        held += buf.append_many([event_fields(100 + k) for k in range(i * 10, i * 10 + 10)])
    assert buf.health.alarmed(DISK_FULL)
    assert buf.held > 0 and buf.health.counter("events_held") > 0
    assert [e.seq for e in held] == list(range(6, 406))  # deciding went on, seqs numbered
    buf.db.execute("PRAGMA max_page_count = 1000000")  # space is back
    assert buf.retry_held()  # what the sync worker's housekeeping does
    nxt = buf.append(event_fields(999))
    assert nxt.seq == 406
    assert not buf.health.alarmed(DISK_FULL) and buf.held == 0
    assert [r.seq for r in buf.pending(10_000)] == list(range(1, 407))


def test_disk_full_hold_queue_is_bounded(tmp_path: Path, buffers: Buffers) -> None:
    buf = open_buffer(buffers, tmp_path / "b.db", hold_max_events=15, retry_full_s=3600)
    buf.append(event_fields(0))
    pages = buf.db.execute("PRAGMA page_count").fetchone()[0]
    buf.db.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(50):
        buf.append_many([event_fields(i + k) for k in range(10)])
    assert buf.held == 15
    assert buf.health.counter("events_dropped") > 0
    buf.db.execute("PRAGMA max_page_count = 1000000")
    assert buf.retry_held()
    pending = [r.seq for r in buf.pending(1000)]
    assert pending == list(range(1, 17))  # contiguous: dropped events took no seqs


def test_buffer_readable_by_plain_sqlite(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db)
    buf.append_many([event_fields(i) for i in range(3)])
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 3
    conn.close()
    buf.close()


def test_error_classifiers() -> None:
    from edge.buffer.recovery import is_corrupt, is_disk_full

    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(OSError(13, "Permission denied"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_corrupt(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_corrupt(sqlite3.DatabaseError("file is not a database"))
    assert not is_corrupt(sqlite3.OperationalError("database is locked"))
    assert not is_corrupt(sqlite3.OperationalError("database or disk is full"))


def test_counts_kept_in_memory_match_the_database(tmp_path: Path, buffers: Buffers) -> None:
    db = tmp_path / "b.db"
    buf = open_buffer(buffers, db, keep_synced_days=0, max_mb=0.25)
    fill(buf, 1500)
    buf.ack(list(range(1, 400)))
    buf.maintain()
    fill(buf, 300, start=9000)
    buf.ack(list(range(400, 900)))
    stats = buf.stats()
    buf.close()
    conn = sqlite3.connect(db)
    unsynced = conn.execute("SELECT count(*) FROM outbox WHERE synced_at IS NULL").fetchone()[0]
    synced = conn.execute("SELECT count(*) FROM outbox WHERE synced_at IS NOT NULL").fetchone()[0]
    oldest = conn.execute("SELECT min(created) FROM outbox WHERE synced_at IS NULL").fetchone()[0]
    conn.close()
    assert (stats.depth, stats.synced_rows, stats.oldest_unsynced) == (unsynced, synced, oldest)
    assert open_buffer(buffers, db).stats().depth == unsynced
