"""The fleet load generator at a tiny size against the real app: every event stored once."""

from __future__ import annotations

from pathlib import Path

from cloud.keys import Role
from cloud.settings import build_settings
from tests.bench.fleet import FleetUnit, run_fleet
from tests.cloud.support import count_events, event, make_key, register_unit, serve


def test_a_tiny_fleet_drains_through_admission_control(tmp_path: Path) -> None:
    settings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        rate_per_s=0,
        db_pool_size=3,
        db_write_pool_size=2,
        ingest_concurrency=1,
        ingest_queue=0,  # the second batch at once is refused: 503 paths run too
    )
    with serve(settings) as live:
        units = [
            FleetUnit.of(d, register_unit(live.store, d), [event(d, s) for s in range(1, 121)], 50)
            for d in (f"fleet-{i}" for i in range(6))
        ]
        reader = make_key(live.store, Role.BACKEND)
        report = run_fleet(live.url, units, reader_token=reader, readers=2)
        assert count_events(live.store) == 6 * 120
        assert report.acked_events == 6 * 120
        assert report.errors_5xx == 0 and report.read_errors == 0
        assert report.reads and report.drain_s > 0
