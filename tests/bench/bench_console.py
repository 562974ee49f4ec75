"""Latency of the web console's pages with a fleet of 1,000 units and 1,000,000 events stored.

For SQLite and PostgreSQL: load ``N`` events over 20 stores × 50 bays (the read
bench's generator, full: 1,000,000; ``--quick``: 20,000), register the 1,000 units
and give each what a live fleet has: a status (most online, some offline by last
will, some on HTTP only), its latest health figures, a day of health samples (one a
minute: 1,440 each), an alarm history (five alarms each, one unit in ten alarming
now) and an OTA report; publish five model versions (with confusion matrices) and
four rollouts over the whole fleet. Then ``shelfsense cloud serve`` (two worker
processes), sign in to the console, and let ``CLIENTS`` clients (threads with
keep-alive connections), each asking for a page every ``INTERVAL`` s, read one page
at a time for a fixed time:

* the **Fleet** page of every unit (1,000 rows) and of one store (50 rows),
* a **Unit** page (state, a day of health charts, alarm history, 50 latest events),
* a **Store** page (stock, the day's interest heatmap and stock lines, conversion),
* the **Models** and **Rollouts** pages,
* ``GET /v1/devices`` (its first page, 200 of the 1,000 units as JSON, an operator key),
* ``GET /v1/health`` as the baseline: the floor of a request through the same
  server, clients and machine.

Prints p50 / p99 per page and its p50 ratio to the baseline. Run:
``.venv/bin/python -m tests.bench.bench_console [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, insert, select

from cloud.keys import Role, create_key
from cloud.store import Store, open_store
from cloud.store.tables import (
    bays,
    device_alarms,
    device_progress,
    device_reported,
    device_status,
    devices,
    events,
    health_samples,
    model_versions,
    rollout_units,
    rollouts,
    stores,
)
from tests.bench.bench_ingest import server
from tests.bench.bench_reads import Latency, hammer, load, settle
from tests.cloud import traffic

STORES, BAYS = 20, 50  # 1,000 units
CLIENTS = 5
INTERVAL = 1.0
LOAD = f"{CLIENTS} clients, a page every {INTERVAL * 1000:.0f} ms each"
SAMPLE_EVERY = timedelta(minutes=1)
ALARMS = ("camera_down", "loadcell_link_down", "buffer_high", "clock_skew", "sync_stalled")
PARTS = ("camera", "loadcells", "loadcell_link", "mqtt")
MODEL_VERSIONS, ROLLOUTS = 5, 4
CHUNK = 20_000


def _units() -> list[tuple[str, str, str]]:
    return traffic.fleet_shape(STORES, BAYS, 8)


def _bulk(store: Store, table: object, rows: list[dict]) -> None:
    for i in range(0, len(rows), CHUNK):
        with store.writer.begin() as conn:
            conn.execute(insert(table), rows[i : i + CHUNK])  # type: ignore[arg-type]


def populate_fleet(store: Store, end: datetime, *, samples: int) -> None:
    """Register the units and give each a status, health, history, alarms and an OTA report;
    publish model versions and rollouts over the fleet (``samples``: health samples per unit)."""
    rng = random.Random(7)
    units = _units()
    now = end
    _bulk(
        store,
        stores,
        [{"store_id": f"store-{s:03d}", "name": "", "created_at": now} for s in range(STORES)],
    )
    _bulk(
        store,
        bays,
        [{"store_id": s, "bay_id": b, "name": "", "created_at": now} for _, s, b in units],
    )
    _bulk(
        store,
        devices,
        [
            {
                "device_id": d,
                "store_id": s,
                "bay_id": b,
                "name": "",
                "created_at": now,
                "desired_config": {},
            }
            for d, s, b in units
        ],
    )
    e = events.c
    with store.engine.connect() as conn:
        seqs = dict(conn.execute(select(e.device_id, func.max(e.seq)).group_by(e.device_id)).all())
    _bulk(
        store,
        device_progress,
        [
            {
                "device_id": d,
                "highest_contiguous": int(seqs.get(d, 0)),
                "last_seen_at": now - timedelta(seconds=rng.uniform(0, 60)),
            }
            for d, _, _ in units
        ],
    )
    status, alarms, reported, history = [], [], [], []
    for i, (d, _, _) in enumerate(units):
        r = rng.random()
        online = True if r < 0.9 else False if r < 0.95 else None  # None: on HTTP only
        down = {p for p in PARTS if rng.random() < 0.03}
        status.append(
            {
                "device_id": d,
                "online": online,
                "changed_at": now - timedelta(hours=rng.uniform(0, 48)),
                "seen_at": now - timedelta(seconds=rng.uniform(0, 200)),
                "health_at": now - timedelta(seconds=rng.uniform(0, 30)),
                "agent_version": "0.1.0",
                "model_version": MODEL_VERSIONS,
                "decided_by": "model",
                "buffer_depth": rng.randrange(0, 40),
                "oldest_unsynced_age_s": rng.uniform(0, 30),
                "last_sync_at": now - timedelta(seconds=rng.uniform(0, 30)),
                "components": {
                    p: {"ok": p not in down, "detail": "up" if p not in down else "silent"}
                    for p in PARTS
                },
            }
        )
        for k, name in enumerate(ALARMS):
            raised = now - timedelta(hours=rng.uniform(1, 23))
            active = k == 0 and i % 10 == 0
            alarms.append(
                {
                    "device_id": d,
                    "name": name,
                    "detail": "no frame for 30 s",
                    "raised_at": raised,
                    "cleared_at": None
                    if active
                    else raised + timedelta(minutes=rng.uniform(1, 30)),
                }
            )
        reported.append(
            {"device_id": d, "state": "active", "version": MODEL_VERSIONS, "previous_version": MODEL_VERSIONS - 1,
             "progress": None, "shadow_agreement": None, "reason": "", "since": now, "updated_at": now}
        )  # fmt: skip
    _bulk(store, device_status, status)
    _bulk(store, device_alarms, alarms)
    _bulk(store, device_reported, reported)
    for d, _, _ in units:
        depth = rng.randrange(0, 20)
        for k in range(samples):
            depth = max(0, depth + rng.randrange(-3, 4))
            history.append(
                {"device_id": d, "at": now - SAMPLE_EVERY * (samples - k), "buffer_depth": depth,
                 "oldest_unsynced_age_s": float(depth), "alarms": 0, "down": 0}
            )  # fmt: skip
        if len(history) >= CHUNK * 5:
            _bulk(store, health_samples, history)
            history.clear()
    _bulk(store, health_samples, history)
    _publish(store, now)
    settle(store)


def _publish(store: Store, now: datetime) -> None:
    rng = random.Random(3)
    labels = {"interest": ["pass_by", "glance", "browse", "touch", "take"],
              "stock": ["none", "removal", "return", "misplaced", "restock", "sensor_fault"]}  # fmt: skip
    versions = []
    for v in range(1, MODEL_VERSIONS + 1):
        confusion = {
            c: {h: {"labels": ls, "matrix": [[rng.randrange(0, 9) + (80 if i == j else 0) for j in range(len(ls))]
                                            for i in range(len(ls))]} for h, ls in labels.items()}
            for c in ("teacher", "student int8")
        }  # fmt: skip
        metrics = {c: {"interest": 0.9, "stock": 0.85} for c in confusion}
        versions.append(
            {"version": v, "target_name": f"model-v{v}.tar", "bytes": 2_000_000, "sha256": "ab" * 32,
             "manifest": {"version": v}, "metrics": {**metrics, "confusion": confusion, "int8_fp32_agreement": 0.98},
             "training": {"windows": 2307, "heldout_windows": 372}, "created_at": now, "published_at": now}
        )  # fmt: skip
    _bulk(store, model_versions, versions)
    units = sorted(d for d, _, _ in _units())
    for r in range(1, ROLLOUTS + 1):
        with store.writer.begin() as conn:
            key = conn.execute(
                insert(rollouts).values(
                    model_version=r + 1, phases="canary:2,10%,50%,100%", group_name=None,
                    min_soak_s=7200.0, abort_failed=0.05, min_shadow_agreement=None, status="completed",
                    phase=3, phase_started_at=now, reason="", created_at=now, updated_at=now,
                )
            ).inserted_primary_key  # fmt: skip
        assert key is not None
        rid = key[0]
        _bulk(
            store,
            rollout_units,
            [{"rollout_id": rid, "device_id": d, "position": i, "previous_version": r, "touched_at": now}
             for i, d in enumerate(units)],
        )  # fmt: skip


def sign_in(port: int, token: str) -> dict[str, str]:
    """The headers of a console session of ``token`` (its cookie)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        form = client.get("/console/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, form.text[:300]
        r = client.post(
            "/console/signin", data={"key": token, "csrf": csrf.group(1), "next": "/console/"}
        )
        assert r.status_code == 303, r.text[:300]
        return {"Cookie": f"ss_console={client.cookies['ss_console']}"}


def paths() -> dict[str, tuple[Callable[[random.Random, dict], str], bool]]:
    """What each page's clients ask for next, and whether it is a console page (cookie)."""
    units = _units()

    def fixed(path: str) -> Callable[[random.Random, dict], str]:
        return lambda _rng, _s: path

    def one_store(rng: random.Random, _s: dict) -> str:
        return f"/console/fleet?store=store-{rng.randrange(STORES):03d}"

    def unit(rng: random.Random, _s: dict) -> str:
        return f"/console/units/{units[rng.randrange(len(units))][0]}"

    def store_page(rng: random.Random, _s: dict) -> str:
        return f"/console/stores/store-{rng.randrange(STORES):03d}"

    return {
        "health (baseline)": (fixed("/v1/health"), False),
        f"fleet, all {len(units):,} units": (fixed("/console/fleet"), True),
        f"fleet, one store ({BAYS} units)": (one_store, True),
        "unit": (unit, True),
        "store": (store_page, True),
        "models": (fixed("/console/models"), True),
        "rollouts": (fixed("/console/rollouts"), True),
        f"GET /v1/devices (first page: 200 of {len(units):,} units)": (fixed("/v1/devices"), False),
    }


def bench_db(db: str, url: str, n: int, seconds: float, samples: int) -> list[Latency]:
    """Every page on one database."""
    end = datetime.now(UTC) - timedelta(minutes=1)
    store = open_store(url, pool_size=4)
    out = []
    try:
        t0 = time.perf_counter()
        load(store, n, end, stores=STORES, bays=BAYS)
        t1 = time.perf_counter()
        populate_fleet(store, datetime.now(UTC), samples=samples)
        print(
            f"{db}: loaded {n:,} events in {t1 - t0:.1f} s, the fleet in {time.perf_counter() - t1:.1f} s"
        )
        with store.writer.begin() as conn:
            token = create_key(conn, role=Role.OPERATOR, name="bench").token
        with server(url, workers=2) as port:
            cookie = sign_in(port, token)
            for name, (nxt, console) in paths().items():
                headers = cookie if console else None
                for spell in (min(1.0, seconds / 4), seconds):  # a warm-up, then the measure
                    secs, errors = hammer(
                        port, token, nxt, spell, INTERVAL, clients=CLIENTS, headers=headers
                    )
                out.append(Latency(db, LOAD, name, secs, errors))
    finally:
        store.dispose()
    return out


def table(rows: list[Latency], n: int) -> str:
    """Markdown table of the results."""
    lines = [
        f"Load: {LOAD}; {n:,} events and {STORES * BAYS:,} units stored.",
        "",
        "| database | page | requests | p50 ms | p99 ms | p50 / baseline | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = {r.db: r.pct(50) for r in rows if r.endpoint.startswith("health")}
    for r in rows:
        lines.append(
            f"| {r.db} | {r.endpoint} | {len(r.seconds)} | {r.pct(50):.1f} | {r.pct(99):.1f} | "
            f"{r.pct(50) / base[r.db]:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def run(
    quick: bool,
    *,
    pg: bool = True,
    sqlite: bool = True,
    sizes: tuple[int, float, int] | None = None,
) -> list[Latency]:
    """Run the benchmark; returns the latencies (the table is printed).

    ``sizes`` (events, seconds per page, health samples per unit) overrides the mode's.
    """
    n, seconds, samples = sizes or ((20_000, 3.0, 60) if quick else (1_000_000, 10.0, 1440))
    rows: list[Latency] = []
    if sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            rows += bench_db("SQLite", f"sqlite:///{tmp}/console.db", n, seconds, samples)
    if pg:
        from tests.support.postgres import pg_schema

        try:
            with pg_schema() as url:
                rows += bench_db("PostgreSQL", url, n, seconds, samples)
        except BaseException as err:  # pytest.skip inside pg_schema when no server
            if type(err).__name__ != "Skipped":
                raise
            print(f"PostgreSQL skipped: {err}")
    print(table(rows, n))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="20,000 events, 60 samples a unit, 3 s a page"
    )
    p.add_argument("--no-pg", action="store_true", help="SQLite only")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = p.parse_args(argv)
    run(args.quick, pg=not args.no_pg, sqlite=not args.no_sqlite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
