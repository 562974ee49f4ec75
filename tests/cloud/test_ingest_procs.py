"""Ingest in processes of its own: every event stored once, refusals as before, reads answered
while ingest is stuck, a dead process replaced, and the processes end with the server."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import cast

import httpx
import psutil
import pytest
from fastapi import FastAPI

from cloud.api.services import Services
from cloud.keys import Role
from cloud.loopback import ServiceProcess
from cloud.settings import CloudSettings, build_settings
from tests.bench.fleet import FleetUnit, run_fleet
from tests.cloud.support import Live, batch, count_events, gz, make_key, register_unit, serve
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


def settings_for(tmp_path: Path, processes: int, **kw: int) -> CloudSettings:
    return build_settings(
        None,
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        rate_per_s=0,
        ingest_processes=processes,
        **kw,
    )


def services_of(live: Live) -> Services:
    app = cast("FastAPI", live.server.config.app)
    services: Services = app.state.services
    return services


def ingest_pids(live: Live) -> list[int]:
    pool = services_of(live).ingest_pool
    assert pool is not None
    return pool.pids()


def test_ingest_processes_store_every_event_once_and_refuse_as_before(tmp_path: Path) -> None:
    with serve(settings_for(tmp_path, 2, ingest_queue=2)) as live:
        pids = ingest_pids(live)
        assert len(pids) == 2 and os.getpid() not in pids
        for pid in pids:  # lower priority than the server that reads
            assert psutil.Process(pid).nice() == min(19, os.nice(0) + live.settings.ingest_nice)
        units = [
            FleetUnit.of(d, register_unit(live.store, d), batch(d, range(1, 121))["events"], 40)
            for d in (f"proc-{i}" for i in range(6))
        ]
        reader = make_key(live.store, Role.BACKEND)
        report = run_fleet(live.url, units, reader_token=reader, readers=2)
        assert count_events(live.store) == 6 * 120
        assert report.acked_events == 6 * 120
        assert report.errors_5xx == 0 and report.read_errors == 0

        token = units[0].token
        with live.client(token) as c:
            again = c.post("/v1/ingest/events", content=gz(batch("proc-0", [1, 2])), headers=GZIP)
            assert again.status_code == 200 and again.json()["duplicates"] == [1, 2]
            other = c.post("/v1/ingest/events", content=gz(batch("proc-1", [200])), headers=GZIP)
            assert other.status_code == 403 and other.json()["code"] == "device_mismatch"
            bad = batch("proc-0", [300])
            bad["events"][0]["seq"] = "three hundred"
            refused = c.post("/v1/ingest/events", content=gz(bad), headers=GZIP)
            assert refused.status_code == 422 and refused.json()["field"] == "events.0.seq"
            broken = c.post("/v1/ingest/events", content=b"\x1f\x8b not gzip", headers=GZIP)
            assert broken.status_code == 400 and broken.json()["code"] == "malformed_gzip"
        assert count_events(live.store) == 6 * 120


def test_reads_are_answered_while_ingest_is_stuck_and_full(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, 1, ingest_concurrency=1, ingest_queue=0)
    with serve(settings) as live:
        token = register_unit(live.store, "stuck-1")
        reader = make_key(live.store, Role.BACKEND)
        lock = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the ingest process waits for the database
        answers: list[httpx.Response] = []

        def post() -> None:
            with live.client(token) as c:
                answers.append(
                    c.post("/v1/ingest/events", content=gz(batch("stuck-1", [1, 2])), headers=GZIP)
                )

        poster = threading.Thread(target=post)
        poster.start()
        wait_until(lambda: services_of(live).admission.active == 1)
        with live.client(token) as c:  # the one slot is taken and nothing may queue
            full = c.post("/v1/ingest/events", content=gz(batch("stuck-1", [3])), headers=GZIP)
        assert full.status_code == 503 and int(full.headers["retry-after"]) >= 1
        with live.client(reader) as c:
            for path in ("/v1/stock", "/v1/interest", "/v1/events?limit=10", "/v1/health"):
                assert c.get(path).status_code == 200, path
        assert not answers, "the stuck batch was answered before the database was free"
        lock.execute("ROLLBACK")
        lock.close()
        poster.join(timeout=60)
        assert answers and answers[0].status_code == 200 and answers[0].json()["stored"] == [1, 2]
        assert count_events(live.store) == 2


def test_a_dead_ingest_process_is_replaced_and_the_batch_stored_once(tmp_path: Path) -> None:
    with serve(settings_for(tmp_path, 1)) as live:
        token = register_unit(live.store, "dead-1")
        (victim,) = ingest_pids(live)
        os.kill(victim, signal.SIGKILL)
        statuses: list[int] = []

        def delivered() -> bool:
            with live.client(token) as c:
                r = c.post(
                    "/v1/ingest/events", content=gz(batch("dead-1", range(1, 6))), headers=GZIP
                )
            statuses.append(r.status_code)
            return r.status_code == 200

        wait_until(delivered, timeout=60, poll=0.2)
        assert set(statuses) <= {200, 503}
        assert count_events(live.store) == 5
        assert victim not in ingest_pids(live) and len(ingest_pids(live)) == 1


def spawned(pid: int) -> set[int]:
    """The multiprocessing children of ``pid`` (not its resource tracker)."""
    out = set()
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.add(child.pid)
        except psutil.Error:
            continue
    return out


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_ingest_processes_end_with_a_killed_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    service = ServiceProcess(
        url, tmp_path / "serve.log", args=["--ingest-processes", "2"], cwd=ROOT
    )
    try:
        service.start(timeout=60)
        wait_until(lambda: len(spawned(service.pid)) == 2, timeout=60)
        children = spawned(service.pid)
        service.kill()  # no shutdown: the children must notice on their own
        wait_until(lambda: all(gone(pid) for pid in children), timeout=30)
    finally:
        service.kill()


@pytest.mark.pg
def test_ingest_processes_on_postgresql_store_every_event_once(pg_url: str) -> None:
    settings = build_settings(None, database_url=pg_url, rate_per_s=0, ingest_processes=2)
    with serve(settings) as live:
        assert len(ingest_pids(live)) == 2
        units = [
            FleetUnit.of(d, register_unit(live.store, d), batch(d, range(1, 101))["events"], 30)
            for d in (f"pg-{i}" for i in range(5))
        ]
        reader = make_key(live.store, Role.BACKEND)
        report = run_fleet(live.url, units, reader_token=reader, readers=2)
        assert count_events(live.store) == 5 * 100
        assert report.acked_events == 5 * 100 and report.errors_5xx == 0
