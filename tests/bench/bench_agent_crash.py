"""Crash soak of the whole agent: ``kill -9`` at random moments of a busy run, restart, repeat.

Workflow:

1. **Reference**: the agent plays the busy twin unpaced in this process against a cloud of
   its own (loopback HTTP); what it decided is what one uninterrupted run decides.
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
   reference (nothing decided twice, nothing missing). Every start of a unit reports its
   slots' levels once more, so those start reports are counted apart, not compared.

The cloud (:mod:`tests.edge.soak_cloud`) is the real service, ``shelfsense cloud serve``
under uvicorn on a fresh SQLite store, with the unit's store, bay, slots and device
registered and a unit key in the agent's identity file; what it stored is read back
through the cloud's export and compared with what the agent committed on every field
both keep (wall time as an instant). It stores each (device, seq) once and counts no
redeliveries.

Sizing: a restarted sim unit replays unpaced from the start of its day up to its last
committed event, roughly 20-40 s per simulated hour on this shared 2-core machine. Its
camera and weight workers share one pace clock (:class:`edge.workers.timeline.Pace`),
which starts once both have caught up, so each kill consumes about ``speed`` x its
0.3-3 s timer of the twin, whatever the twin time reached. FULL plays 2.5 h at 30x: the
50 kills end inside the twin and most timers see new commits (the report prints both,
and how far the twin had got by the last kill); the final run plays the rest out
unpaced.

Run: ``.venv/bin/python -m tests.bench.bench_agent_crash [--quick] [--kills N] [--hours H]
[--seed N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    write_unit,
)
from tests.edge.soak_cloud import SoakCloud, compared_fields, open_cloud, same_event
from tests.support.waiting import wait_until

SEED = 2026  # of the kill moments


@dataclass(frozen=True)
class Plan:
    """Size of one soak: how many kills, how long a twin run, how fast it is paced while
    kills come (``final_speed``: the last run, which plays the rest out; 0 is unpaced)."""

    kills: int
    hours: float
    speed: float
    wait: tuple[float, float] = (0.3, 3.0)
    final_speed: float = 0.0


# Each kill consumes about speed x its timer of the twin (see the module docstring).
FULL = Plan(kills=50, hours=2.5, speed=30.0)
QUICK = Plan(kills=3, hours=0.1, speed=60.0)


@dataclass
class Results:
    """What the soak measured; every count but the times must come out as the check says."""

    plan: Plan
    reference_events: int = 0
    reference_s: float = 0.0
    kills: int = 0
    mid_traffic: int = 0  # kills that landed while the twin was still playing
    committed: int = 0  # distinct decided events committed before some kill
    grew: int = 0  # kills after which the buffer held more events than before
    caught_up: int = 0  # restarts seen committing a new seq before their kill timer began
    live_kills: int = 0  # kills that followed new commits during their 0.3-3 s timer
    live_events: int = 0  # events committed during the kill timers (before a kill)
    catch_up_s: list[float] = field(default_factory=list)  # workers run until a new seq
    twin_reached_s: float = 0.0  # sim time of the newest event committed by the last kill
    rewritten: int = 0  # committed events a later run changed in the buffer
    lost: int = 0  # committed before a kill, missing from the cloud or changed there
    changed_bodies: int = 0  # committed events stored with any shared field changed
    fields: tuple[str, ...] = ()  # the fields compared between buffer and cloud
    duplicated: int = 0  # seqs stored twice, or decisions stored more often than decided
    missing: int = 0  # decided by the reference run, absent from the cloud
    gaps: int = 0  # seqs missing from 1..max
    cloud_events: int = 0  # decided events stored (start level reports apart)
    start_reports: int = 0  # level reports stored, one per slot at every start of the unit
    contiguous: bool = False
    equals_reference: bool = False
    restart_s: list[float] = field(default_factory=list)  # start until the workers run
    final_s: float = 0.0  # the last run, until everything is played and drained
    wall_s: float = 0.0  # kills plus final run


def _reference(tmp: Path, plan: Plan, res: Results) -> list[tuple[Any, ...]]:
    with open_cloud(tmp, "reference-cloud") as cloud:
        t0 = time.perf_counter()
        run_in_process(
            tmp / "reference", cloud, cloud.base_url, hours=plan.hours, api_key=cloud.api_key
        )
        res.reference_s = time.perf_counter() - t0
        events = sorted((st.event for st in cloud.stored(DEVICE)), key=lambda e: e["seq"])
    out = decided(events)
    res.reference_events = len(out)
    return out


def _soak(
    data: Path, cloud: SoakCloud, plan: Plan, res: Results, rng: random.Random
) -> dict[int, dict[str, Any]]:
    """Kill and restart the agent ``plan.kills`` times, then let it finish; return every
    event committed before some kill, as first seen in the buffer."""
    cfg = write_unit(data, cloud.base_url, api_key=cloud.api_key)
    ever: dict[int, dict[str, Any]] = {}
    after = 0  # highest seq committed before the latest kill
    t0 = time.perf_counter()
    for _ in range(plan.kills):
        proc = start(cfg, speed=plan.speed, hours=plan.hours)
        try:
            t_start = time.perf_counter()
            wait_until(lambda: running(data, proc), timeout=60)  # noqa: B023 (called at once)
            res.restart_s.append(time.perf_counter() - t_start)
            t_run = time.perf_counter()
            wait_until(lambda: caught_up(data, proc, after), timeout=120)  # noqa: B023 (called at once)
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
        res.twin_reached_s = float(ever[after]["mono_time"]) if after else 0.0
    proc = start(cfg, speed=plan.final_speed, hours=plan.hours)
    t_final = time.perf_counter()
    played = plan.hours * 3600 / plan.final_speed if plan.final_speed else plan.hours * 60
    try:
        wait_until(lambda: finished(data, proc), timeout=played + 300)
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
    cloud: SoakCloud,
    ever: dict[int, dict[str, Any]],
    reference: list[tuple[Any, ...]],
    res: Results,
) -> None:
    rows = cloud.stored(DEVICE)
    seqs = [r.seq for r in rows]
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_seq.setdefault(r.seq, []).append(r.event)
    res.cloud_events = len(decided([r.event for r in rows]))
    res.start_reports = len(rows) - res.cloud_events
    top = max(seqs, default=0)
    res.gaps = top - len(by_seq)
    res.contiguous = sorted(seqs) == list(range(1, len(rows) + 1))
    res.committed = len(decided(list(ever.values())))
    res.lost = sum(
        1
        for s, b in ever.items()
        if len(by_seq.get(s, [])) < 1 or decided([by_seq[s][0]]) != decided([b])
    )
    res.changed_bodies = sum(
        1 for s, b in ever.items() if s in by_seq and not same_event(by_seq[s][0], b)
    )
    shared = [compared_fields(by_seq[s][0], b) for s, b in ever.items() if s in by_seq]
    res.fields = tuple(sorted(set.intersection(*shared))) if shared else ()
    got = decided([by_seq[s][0] for s in sorted(by_seq)])
    twice = sum(len(v) - 1 for v in by_seq.values())
    res.duplicated = twice + sum((Counter(got) - Counter(reference)).values())
    res.missing = sum((Counter(reference) - Counter(got)).values())
    res.equals_reference = got == reference


def run(plan: Plan, tmp: Path, *, seed: int = SEED) -> Results:
    """Reference run, then the kill soak against a fresh real cloud, then the check."""
    res = Results(plan=plan)
    reference = _reference(tmp, plan, res)
    with open_cloud(tmp, "cloud") as side:
        ever = _soak(tmp / "unit", side, plan, res, random.Random(seed))
        _check(side, ever, reference, res)
    return res


def report(res: Results) -> str:
    """The figures as markdown tables."""
    p = res.plan
    med = statistics.median(res.restart_s) if res.restart_s else 0.0
    cat = statistics.median(res.catch_up_s) if res.catch_up_s else 0.0
    side = "real cloud service"
    lines = [
        f"### agent kill -9 soak: busy twin, {p.hours} h at {p.speed:g}x, "
        f"kills after {p.wait[0]}-{p.wait[1]} s, {side} over loopback HTTP",
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
        f"twin reached by the last kill: {res.twin_reached_s / 60:.1f} of {p.hours * 60:g} min; "
        f"kills after which the buffer had grown: {res.grew}; "
        f"missing vs reference: {res.missing}; "
        f"start level reports stored (one per slot at every start): {res.start_reports}; "
        f"committed events stored with any field changed: {res.changed_bodies} "
        f"(fields compared: {', '.join(res.fields)})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> Results:
    """Run the soak, print the tables, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 kills of a short run (smoke test)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the kill moments")
    parser.add_argument("--kills", type=int, default=None, help=f"kills (default {FULL.kills})")
    parser.add_argument(
        "--hours", type=float, default=None, help=f"twin hours played (default {FULL.hours})"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-agent-crash-") as d:
        plan = QUICK if args.quick else FULL
        if args.kills is not None:
            plan = dataclasses.replace(plan, kills=args.kills)
        if args.hours is not None:
            plan = dataclasses.replace(plan, hours=args.hours)
        res = run(plan, Path(d), seed=args.seed)
    print(report(res))
    return res


if __name__ == "__main__":
    main()
