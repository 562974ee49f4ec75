"""kill -9 of a busy unit at random moments: nothing committed is lost, seqs continue,
and after draining the cloud holds every event exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge.buffer import Buffer
from tests.edge.cloud_stand_in import IngestHttpServer, IngestStore
from tests.edge.test_sync_http import drain

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(db: Path, seed: int, base_url: str | None, rng: random.Random) -> list[int]:
    """Start the writer, kill -9 it after a random time; returns the seqs it committed."""
    args = [sys.executable, "-m", "tests.edge.crash_child", str(db), str(seed)]
    if base_url:
        args.append(base_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=REPO, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # it is running and committing
    assert first.strip(), "writer produced nothing"
    time.sleep(rng.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    lines = (first + rest).decode().split("\n")
    # the last line may be cut mid-write; whole lines were printed after their commit
    return [int(x) for x in lines[:-1] if x.strip()]


def crash_cycles(tmp: Path, iterations: int, seed: int, server: IngestHttpServer) -> list[int]:
    """Kill the writer ``iterations`` times; check each time; returns all committed seqs."""
    rng = random.Random(seed)
    db = tmp / "crash.db"
    committed: list[int] = []
    for i in range(iterations):
        got = run_and_kill(db, seed * 1000 + i, server.base_url, rng)
        assert got, "nothing committed before the kill"
        if committed:
            assert got[0] > committed[-1], "seq went backwards after a restart"
        committed += got
        buf = Buffer(db, device_id="crash-unit")
        top = buf.seq
        buf.close()
        assert top >= committed[-1]
    return committed


def check_after_crashes(tmp: Path, committed: list[int], server: IngestHttpServer) -> None:
    buf = Buffer(tmp / "crash.db", device_id="crash-unit")
    present = {r[0] for r in buf.db.execute("SELECT seq FROM outbox")}
    assert set(committed) <= present, "a committed event was lost"
    assert present == set(range(1, max(present) + 1)), "seqs have a gap"
    drain(buf, server, "crash-unit")
    stored = server.store.seqs("crash-unit")
    assert stored == sorted(present)  # every event once, none twice
    buf.close()


def test_kill9_while_writing_and_syncing(tmp_path: Path) -> None:
    store = IngestStore(tmp_path / "cloud.db")
    with IngestHttpServer(store) as server:
        committed = crash_cycles(tmp_path, 4, seed=11, server=server)
        assert len(committed) > 20
        check_after_crashes(tmp_path, committed, server)
