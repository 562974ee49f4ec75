"""A slot's current stock is its device's figure of highest seq, whatever the arrival order.

Over HTTP on SQLite and PostgreSQL, over MQTT through an ingest worker, and as a
hypothesis property over random arrival orders and batchings of one unit's figures.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cloud.checks import TimeBounds
from cloud.ingest import rebuild_current_stock, store_events
from cloud.keys import Role
from cloud.mqtt_ingest import IngestWorker
from cloud.store import open_store
from cloud.store.tables import current_stock
from models.wire import ShelfEvent
from tests.cloud.support import Live, event, make_key, register_unit, serve
from tests.cloud.test_mqtt_ingest import Unit

URL = "/v1/ingest/events"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _stock(live: Live) -> list[tuple[int, int, int]]:
    be = live.client(make_key(live.store, Role.BACKEND))
    data = be.get("/v1/stock").json()["data"]
    return [(s["slot"], s["stock_units"], s["seq"]) for s in data]


@pytest.mark.parametrize("server", ["live", "pg_live"])
def test_an_older_seq_stored_later_does_not_overwrite_the_newer_count(
    server: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(server)
    u = live.client(register_unit(live.store, "unit-1"))
    # one decision pass: both figures carry the same wall time
    for seq, units in [(2, 5), (1, 6)]:
        ev = event("unit-1", seq, t=T0, slot=0, sku="A", stock_units=units)
        r = u.post(URL, json={"device_id": "unit-1", "events": [ev]})
        assert r.status_code == 200, r.text
    assert _stock(live) == [(0, 5, 2)]
    # a later seq wins even with an older wall time (the unit's clock stepped back)
    ev = event("unit-1", 3, t=T0 - timedelta(minutes=30), slot=0, sku="A", stock_units=4)
    assert u.post(URL, json={"device_id": "unit-1", "events": [ev]}).status_code == 200
    assert _stock(live) == [(0, 4, 3)]
    # the same order when the table is rebuilt from the stored events
    rebuild_current_stock(live.store)
    assert _stock(live) == [(0, 4, 3)]


def test_another_unit_on_the_slot_takes_over_by_wall_time(live: Live) -> None:
    old = live.client(register_unit(live.store, "unit-old"))
    new = live.client(register_unit(live.store, "unit-new"))
    ev = event("unit-old", 900, t=T0, slot=0, sku="A", stock_units=9)
    assert old.post(URL, json={"device_id": "unit-old", "events": [ev]}).status_code == 200
    ev = event("unit-new", 1, t=T0 + timedelta(minutes=1), slot=0, sku="A", stock_units=7)
    assert new.post(URL, json={"device_id": "unit-new", "events": [ev]}).status_code == 200
    assert _stock(live) == [(0, 7, 1)]
    rebuild_current_stock(live.store)
    assert _stock(live) == [(0, 7, 1)]


def test_mqtt_figures_stored_out_of_seq_order_keep_the_newest(mosquitto, sqlite_settings) -> None:
    bounds = TimeBounds(timedelta(minutes=5), timedelta(days=30))
    with serve(sqlite_settings) as live:
        register_unit(live.store, "unit-1")
        worker = IngestWorker(
            open_store(sqlite_settings.database_url, pool_size=2),
            host=mosquitto.host,
            port=mosquitto.port,
            bounds=bounds,
            batch_wait_s=0.0,
        )
        worker.start()
        assert worker.ready.wait(10)
        unit = Unit(mosquitto.host, mosquitto.port, "unit-1")
        try:
            unit.publish(event("unit-1", 2, t=T0, slot=0, sku="A", stock_units=5))
            assert unit.wait_acked({2}) == {2}
            unit.publish(event("unit-1", 1, t=T0, slot=0, sku="A", stock_units=6))
            assert unit.wait_highest(2) == 2
        finally:
            unit.close()
            worker.stop()
            worker.store.dispose()
        assert _stock(live) == [(0, 5, 2)]


_store_ids = itertools.count()


def _figures(draw: st.DrawFn) -> tuple[list[ShelfEvent], list[list[int]]]:
    n = draw(st.integers(1, 12))
    k = next(_store_ids)  # each example its own unit and store: seqs are idempotent
    store_id, device_id = f"prop-{k}", f"unit-p{k}"
    evs = []
    for seq in range(1, n + 1):
        kind = draw(st.sampled_from(["stock", "level"]))
        ev = event(
            device_id,
            seq,
            t=T0 + timedelta(seconds=draw(st.integers(-60, 60))),  # wall time: any order
            store=store_id,
            slot=draw(st.integers(0, 2)),
            sku="A",
            kind=kind,
            label="removal" if kind == "stock" else "ok",
            stock_units=draw(st.integers(0, 30)),
        )
        evs.append(ShelfEvent.model_validate(ev))
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=n)))
    batches = [list(order[a:b]) for a, b in itertools.pairwise([0, *cuts, n]) if a < b]
    resend = draw(st.lists(st.integers(0, n - 1), max_size=3))  # duplicates arrive too
    return evs, [*batches, resend] if resend else batches


figure_sets = st.composite(_figures)


def _check_property(store_url: str, cases: st.SearchStrategy, examples: int) -> None:
    store = open_store(store_url, pool_size=2)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cases)
    def prop(case: tuple[list[ShelfEvent], list[list[int]]]) -> None:
        evs, batches = case
        for b in batches:
            store_events(store, [evs[i] for i in b])
        newest: dict[int, ShelfEvent] = {}
        for ev in evs:  # seq order
            assert ev.slot is not None
            newest[ev.slot] = ev
        c = current_stock.c
        with store.engine.connect() as conn:
            got = conn.execute(
                select(c.slot, c.stock_units, c.seq).where(c.store_id == evs[0].store)
            ).all()
        want = {(s, ev.stock_units, ev.seq) for s, ev in newest.items()}
        assert {tuple(r) for r in got} == want

    try:
        prop()
    finally:
        store.dispose()


def test_any_arrival_order_leaves_the_highest_seq_figure_sqlite(tmp_path) -> None:
    _check_property(f"sqlite:///{tmp_path / 'p.db'}", figure_sets(), 60)


def test_any_arrival_order_leaves_the_highest_seq_figure_postgres(pg_url: str) -> None:
    _check_property(pg_url, figure_sets(), 25)
