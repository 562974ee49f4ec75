"""Crash soak of the whole agent: ``kill -9`` at random moments of a busy run, restart, repeat.

Workflow:

1. **Reference**: the agent plays the busy twin unpaced in this process against its own
   stand-in cloud (loopback HTTP); what it decided is what one uninterrupted run decides.
2. **Kills**: ``shelfsense edge run`` in sim mode is started as a child process at an
   accelerated ``--speed``. A restarted sim unit first replays its day unpaced up to its
   last committed event, so the bench waits, from the outside, until the buffer (read
   only) holds a seq above the last one committed before the restart: the agent is live
   again. Only then it gets a random 0.3–3 s, then SIGKILL, so every kill lands while new
   events are being committed. Its SQLite buffer is read after every kill: the events it
   had committed so far (a restart must never rewrite one). 50 kills (``--quick``: 3).
3. **Final run** to completion: the twin is played out and the buffer drained.
4. **Check**: every event committed before any kill is in the cloud exactly once and
   unchanged, the cloud's seqs are 1..N with no gap, and the cloud's content equals the
   reference (nothing decided twice, nothing missing).

The cloud is the stand-in of :mod:`tests.edge.cloud_stand_in` (idempotent on
device_id + seq, like the real ingest), which keeps the stored body of every event so
that "unchanged" can be checked field by field.

Run: ``.venv/bin/python -m tests.bench.bench_agent_crash [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.edge.agent_support import (
    DEVICE,
    caught_up,
    committed,
    decided,
    finished,
    run_in_process,
    running,
    start,
    status,
    top_seq,
    wait_until,
    write_unit,
)
from tests.edge.cloud_stand_in import IngestHttpServer, IngestStore

SEED = 2026  # of the kill moments


@dataclass(frozen=True)
class Plan:
    """Size of one soak: how many kills, how long a twin run, how fast it is paced."""

    kills: int
    hours: float
    speed: float
    wait: tuple[float, float] = (0.3, 3.0)


# Each kill waits for the restart to catch up, then runs 0.3-3 s paced: 50 kills at 60x
# play about 50 * (1.65 s + up to the first new commit) * 60 s of the twin, inside 2.5 h.
FULL = Plan(kills=50, hours=2.5, speed=60.0)
QUICK = Plan(kills=3, hours=0.1, speed=60.0)


@dataclass
class Results:
    """What the soak measured; every count but the times must come out as the check says."""

    plan: Plan
    reference_events: int = 0
    reference_s: float = 0.0
    kills: int = 0
    mid_traffic: int = 0  # kills that landed while the twin was still playing
    committed: int = 0  # distinct events committed before some kill
    grew: int = 0  # kills after which the buffer held more events than before
    caught_up: int = 0  # restarts seen committing a new seq before their kill timer began
    live_kills: int = 0  # kills that followed new commits during their 0.3-3 s timer
    live_events: int = 0  # events committed during the kill timers (before a kill)
    catch_up_s: list[float] = field(default_factory=list)  # workers run until a new seq
    rewritten: int = 0  # committed events a later run changed in the buffer
    lost: int = 0  # committed before a kill, missing from the cloud or changed there
    changed_bodies: int = 0  # committed bodies not stored byte for byte (as parsed JSON)
    duplicated: int = 0  # seqs stored twice, or decisions stored more often than decided
    missing: int = 0  # decided by the reference run, absent from the cloud
    gaps: int = 0  # seqs missing from 1..max
    cloud_events: int = 0
    redelivered: int = 0  # events the cloud got more than once and absorbed (idempotent)
    contiguous: bool = False
    equals_reference: bool = False
    restart_s: list[float] = field(default_factory=list)  # start until the workers run
    final_s: float = 0.0  # the last run, until everything is played and drained
    wall_s: float = 0.0  # kills plus final run


def _reference(tmp: Path, plan: Plan, res: Results) -> list[tuple[Any, ...]]:
    store = IngestStore(tmp / "reference-cloud.db")
    try:
        with IngestHttpServer(store) as server:
            t0 = time.perf_counter()
            run_in_process(tmp / "reference", store, server.base_url, hours=plan.hours)
            res.reference_s = time.perf_counter() - t0
        bodies = sorted((json.loads(r["body"]) for r in store.rows(DEVICE)), key=lambda b: b["seq"])
    finally:
        store.close()
    res.reference_events = len(bodies)
    return decided(bodies)


def _soak(
    data: Path, base_url: str, plan: Plan, res: Results, rng: random.Random
) -> dict[int, dict[str, Any]]:
    """Kill and restart the agent ``plan.kills`` times, then let it finish; return every
    event committed before some kill, as first seen in the buffer."""
    cfg = write_unit(data, base_url)
    ever: dict[int, dict[str, Any]] = {}
    after = 0  # highest seq committed before the latest kill
    t0 = time.perf_counter()
    for _ in range(plan.kills):
        proc = start(cfg, speed=plan.speed, hours=plan.hours)
        try:
            t_start = time.perf_counter()
            wait_until(lambda p=proc: running(data, p), timeout=60)
            res.restart_s.append(time.perf_counter() - t_start)
            t_run = time.perf_counter()
            wait_until(lambda p=proc, a=after: caught_up(data, p, a), timeout=120)
            res.catch_up_s.append(time.perf_counter() - t_run)
            live_from = top_seq(data / "buffer.db")
            res.caught_up += live_from > after
            time.sleep(rng.uniform(*plan.wait))
            st = status(data) or {}
            if st.get("gauges", {}).get("sim_done") is not True and proc.poll() is None:
                res.mid_traffic += 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        res.kills += 1
        now = committed(data / "buffer.db")
        new = sum(1 for s in now if s > live_from)
        res.live_kills += new > 0
        res.live_events += new
        after = max(now, default=0)
        res.rewritten += sum(1 for s, b in ever.items() if s in now and now[s] != b)
        res.grew += len(now.keys() - ever.keys()) > 0
        for s, b in now.items():
            ever.setdefault(s, b)
    proc = start(cfg, speed=plan.speed, hours=plan.hours)
    t_final = time.perf_counter()
    try:
        wait_until(lambda: finished(data, proc), timeout=plan.hours * 3600 / plan.speed + 120)
        res.final_s = time.perf_counter() - t_final
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    res.wall_s = time.perf_counter() - t0
    return ever


def _check(
    store: IngestStore,
    ever: dict[int, dict[str, Any]],
    reference: list[tuple[Any, ...]],
    res: Results,
) -> None:
    rows = store.rows(DEVICE)
    seqs = [r["seq"] for r in rows]
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_seq.setdefault(r["seq"], []).append(json.loads(r["body"]))
    res.cloud_events = len(rows)
    res.redelivered = sum(1 for r in rows if r["deliveries"] > 1)
    top = max(seqs, default=0)
    res.gaps = top - len(by_seq)
    res.contiguous = sorted(seqs) == list(range(1, len(rows) + 1))
    res.committed = len(ever)
    res.lost = sum(
        1
        for s, b in ever.items()
        if len(by_seq.get(s, [])) < 1 or decided([by_seq[s][0]]) != decided([b])
    )
    res.changed_bodies = sum(1 for s, b in ever.items() if s in by_seq and by_seq[s][0] != b)
    cloud = decided([by_seq[s][0] for s in sorted(by_seq)])
    twice = sum(len(v) - 1 for v in by_seq.values())
    res.duplicated = twice + sum((Counter(cloud) - Counter(reference)).values())
    res.missing = sum((Counter(reference) - Counter(cloud)).values())
    res.equals_reference = cloud == reference


def run(plan: Plan, tmp: Path, *, seed: int = SEED) -> Results:
    """Reference run, then the kill soak against a fresh stand-in cloud, then the check."""
    res = Results(plan=plan)
    reference = _reference(tmp, plan, res)
    store = IngestStore(tmp / "cloud.db")
    try:
        with IngestHttpServer(store) as server:
            ever = _soak(tmp / "unit", server.base_url, plan, res, random.Random(seed))
        _check(store, ever, reference, res)
    finally:
        store.close()
    return res


def report(res: Results) -> str:
    """The figures as markdown tables."""
    p = res.plan
    med = statistics.median(res.restart_s) if res.restart_s else 0.0
    cat = statistics.median(res.catch_up_s) if res.catch_up_s else 0.0
    lines = [
        f"### agent kill -9 soak: busy twin, {p.hours} h at {p.speed:g}x, "
        f"kills after {p.wait[0]}-{p.wait[1]} s, stand-in cloud over loopback HTTP",
        "",
        "| kills | mid-traffic | caught up | kills after new commits "
        "| events committed in kill timers | events committed | lost | duplicated | gaps "
        "| rewritten | cloud events | = reference | wall time (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | :---: | ---: |",
        f"| {res.kills} | {res.mid_traffic} | {res.caught_up} | {res.live_kills} "
        f"| {res.live_events} | {res.committed} | {res.lost} | {res.duplicated} "
        f"| {res.gaps} | {res.rewritten} | {res.cloud_events} "
        f"| {'yes' if res.equals_reference else 'NO'} | {res.wall_s:.1f} |",
        "",
        "| run | events | wall time (s) |",
        "| --- | ---: | ---: |",
        f"| uninterrupted reference (in process, unpaced) | {res.reference_events} "
        f"| {res.reference_s:.1f} |",
        f"| killed and restarted, final run to the end | {res.cloud_events} | {res.final_s:.1f} |",
        "",
        f"restart until workers run: median {med:.2f} s over {len(res.restart_s)}; "
        f"workers run until a new seq (replay caught up): median {cat:.2f} s, "
        f"max {max(res.catch_up_s, default=0.0):.2f} s; "
        f"kills after which the buffer had grown: {res.grew}; "
        f"redelivered and absorbed by the cloud: {res.redelivered}; "
        f"missing vs reference: {res.missing}; "
        f"committed bodies stored with any field changed: {res.changed_bodies}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> Results:
    """Run the soak, print the tables, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 kills of a short run (smoke test)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the kill moments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-agent-crash-") as d:
        res = run(QUICK if args.quick else FULL, Path(d), seed=args.seed)
    print(report(res))
    return res


if __name__ == "__main__":
    main()
