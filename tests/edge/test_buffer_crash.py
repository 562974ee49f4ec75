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
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.transport import SyncUnavailable
from edge.sync.worker import SyncWorker
from tests.edge.real_cloud import RealCloud, real_cloud
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


DEVICE = "crash-unit"


def run_and_kill(db: Path, seed: int, base_url: str, key: str, rng: random.Random) -> list[int]:
    """Start the busy unit, kill -9 it after a random time; returns the seqs it committed."""
    args = [sys.executable, "-m", "tests.edge.real_cloud", "unit", str(db), str(seed)]
    args += [base_url, DEVICE, key]
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


def crash_cycles(tmp: Path, iterations: int, seed: int, base_url: str, key: str) -> list[int]:
    """Kill the unit ``iterations`` times; check each time; returns all committed seqs."""
    rng = random.Random(seed)
    db = tmp / "crash.db"
    committed: list[int] = []
    for i in range(iterations):
        got = run_and_kill(db, seed * 1000 + i, base_url, key, rng)
        assert got, "nothing committed before the kill"
        if committed:
            assert got[0] > committed[-1], "seq went backwards after a restart"
        committed += got
        buf = Buffer(db, device_id=DEVICE)
        top = buf.seq
        buf.close()
        assert top >= committed[-1]
    return committed


def drain(buf: Buffer, base_url: str, key: str, *, timeout_s: float = 300.0) -> None:
    """Send until the outbox is empty, retrying through failures."""
    config = SyncConfig(mode="http", base_url=base_url, batch_size=100)
    ident = Identity(device_id=buf.device_id, api_key=key)
    worker = SyncWorker(buf, [HttpTransport(base_url, ident, timeout_s=5)], config=config)

    def drained() -> bool:
        try:
            worker.step()
        except SyncUnavailable:
            return False  # the cloud is busy or away: the next poll tries again
        return buf.stats().depth == 0

    try:
        wait_until(lambda: buf.stats().depth == 0 or drained(), timeout=timeout_s)
    finally:
        worker.close()


def check_after_crashes(tmp: Path, committed: list[int], cloud: RealCloud) -> None:
    buf = Buffer(tmp / "crash.db", device_id=DEVICE)
    present = {r[0] for r in buf.db.execute("SELECT seq FROM outbox")}
    assert set(committed) <= present, "a committed event was lost"
    assert present == set(range(1, max(present) + 1)), "seqs have a gap"
    drain(buf, cloud.url, cloud.keys[DEVICE])
    stored = cloud.seqs(DEVICE)
    assert stored == sorted(present)  # every event once, none twice
    buf.close()


def test_kill9_while_writing_and_syncing(tmp_path: Path) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register(DEVICE)
        committed = crash_cycles(tmp_path, 4, seed=11, base_url=cloud.url, key=key)
        assert len(committed) > 20
        check_after_crashes(tmp_path, committed, cloud)
