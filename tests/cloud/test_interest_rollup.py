"""Interest per hour kept at ingest answers as counting the stored events would.

A hypothesis property on SQLite and PostgreSQL: random interest episodes of a few
units (several slots and SKUs per episode, episodes crossing an hour, events
without an episode, stock events between), delivered in random batches, out of
order and with resends. After every batch the read equals a count made in Python
from the events stored so far, and :func:`cloud.interest_rollup.rebuild` gives
the same tables back. The pure decision (:func:`changes`) is checked on its own too.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cloud.ingest import EVENT_COLUMNS, driver_params, store_events
from cloud.interest_rollup import Episode, changes, hour_of, rebuild
from cloud.reads import interest
from cloud.store import Store, open_store
from cloud.store.engine import make_engine, migrate
from cloud.store.tables import interest_bay_hours, interest_sku_hours
from models.wire import ShelfEvent
from tests.cloud.support import event

T0 = datetime.now(UTC).replace(minute=50, second=0, microsecond=0) - timedelta(hours=6)
SKUS = ["A", "B", "C"]  # slot i of every bay holds SKUS[i]
LABELS = ["glance", "touch", "take", "browse"]

_runs = itertools.count()


def _events(draw: st.DrawFn) -> tuple[list[ShelfEvent], list[list[int]]]:
    run = next(_runs)  # each example its own store and units: seqs are idempotent
    store = f"roll-{run}"
    evs: list[ShelfEvent] = []
    seqs: dict[str, int] = defaultdict(int)
    for _ in range(draw(st.integers(1, 8))):
        unit = draw(st.sampled_from(["u1", "u2", "u3"]))
        device, bay = f"{store}-{unit}", f"bay-{unit}"
        episode = draw(st.one_of(st.none(), st.integers(1, 4)))  # None: the event alone
        label = draw(st.sampled_from(LABELS))
        start = T0 + timedelta(minutes=draw(st.integers(0, 20)))  # T0 + 10 min: the next hour
        for _slot_event in range(draw(st.integers(1, 3))):
            slot = draw(st.one_of(st.none(), st.integers(0, 2)))
            seqs[device] += 1
            ev = event(
                device,
                seqs[device],
                t=start + timedelta(seconds=draw(st.integers(0, 30))),
                kind="interest",
                label=label,
                store=store,
                bay=bay,
                slot=slot,
                sku=None if slot is None else SKUS[slot],
                units=None,
                dwell_s=draw(st.one_of(st.none(), st.sampled_from([0.5, 2.0, 7.5]))),
            )
            evs.append(ShelfEvent.model_validate({**ev, "episode": episode}))
        if draw(st.booleans()):  # a stock event between: never counted as interest
            seqs[device] += 1
            ev = event(device, seqs[device], t=start, store=store, bay=bay, stock_units=3)
            evs.append(ShelfEvent.model_validate(ev))
    n = len(evs)
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=4)))
    batches = [list(order[a:b]) for a, b in itertools.pairwise([0, *cuts, n]) if a < b]
    resend = draw(st.lists(st.integers(0, n - 1), max_size=4))
    return evs, [*batches, resend] if resend else batches


cases = st.composite(_events)


def _expected(evs: list[ShelfEvent]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Count episodes in Python: per SKU and per bay, hour and label; dwell, reach."""
    eps: dict[tuple[Any, ...], dict[str, Any]] = {}
    for ev in evs:
        if ev.kind != "interest":
            continue
        ep = ev.episode if ev.episode is not None else -ev.seq
        keys = [("bay", ev.bay)] + ([("sku", ev.sku)] if ev.sku is not None else [])
        for what, key in keys:
            k = (what, ev.store, key, hour_of(ev.wall_time), ev.label, ev.device_id, ep)
            e = eps.setdefault(k, {"dwell": None, "at_slot": 0})
            if ev.dwell_s is not None:
                e["dwell"] = ev.dwell_s if e["dwell"] is None else max(e["dwell"], ev.dwell_s)
            e["at_slot"] = max(e["at_slot"], int(ev.slot is not None))
    per: dict[str, dict[Any, dict[str, Any]]] = {"sku": {}, "bay": {}}
    for (what, store, key, hour, label, _dev, _ep), e in eps.items():
        a = per[what].setdefault((store, key, hour.replace(tzinfo=UTC)), {"counts": {}})
        a["counts"][label] = a["counts"].get(label, 0) + 1
        a.setdefault("dwells", []).append(e["dwell"])
        a["reached"] = a.get("reached", 0) + e["at_slot"]
    return per["sku"], per["bay"]


def _check(got: list[Any], want: dict[Any, Any], key: str) -> None:
    assert {(g.store_id, getattr(g, key), g.hour) for g in got} == set(want)
    for g in got:
        w = want[(g.store_id, getattr(g, key), g.hour)]
        assert g.counts == w["counts"]
        assert g.episodes == sum(w["counts"].values())
        dwells = [d for d in w["dwells"] if d is not None]
        assert g.dwell_max_s == (max(dwells) if dwells else None)
        if dwells:
            assert g.dwell_mean_s == pytest.approx(sum(dwells) / len(dwells))
        else:
            assert g.dwell_mean_s is None
        if key == "bay_id":
            assert g.reached == w["reached"]


def _tables(store: Store) -> list[set[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return [
            {
                tuple(round(v, 6) if isinstance(v, float) else v for v in r)
                for r in conn.execute(select(t))
            }
            for t in (interest_sku_hours, interest_bay_hours)
        ]


def _run_property(url: str, examples: int) -> None:
    store = open_store(url, pool_size=2)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cases())
    def prop(case: tuple[list[ShelfEvent], list[list[int]]]) -> None:
        evs, batches = case
        stored: dict[tuple[str, int], ShelfEvent] = {}
        for b in batches:
            store_events(store, [evs[i] for i in b])
            stored.update({(evs[i].device_id, evs[i].seq): evs[i] for i in b})
            want_skus, want_bays = _expected(list(stored.values()))
            with store.engine.connect() as conn:
                skus, bays = interest(
                    conn,
                    store=evs[0].store,
                    sku=None,
                    since=T0 - timedelta(minutes=30),  # within the hour before T0's
                    until=T0 + timedelta(hours=1),
                )
            _check(skus, want_skus, "sku")
            _check(bays, want_bays, "bay_id")

    try:
        prop()
        kept = _tables(store)
        with store.writer.begin() as conn:
            rebuild(conn)
        assert _tables(store) == kept
    finally:
        store.dispose()


def test_interest_kept_at_ingest_counts_as_the_stored_events_sqlite(tmp_path) -> None:
    _run_property(f"sqlite:///{tmp_path / 'i.db'}", 60)


def test_interest_kept_at_ingest_counts_as_the_stored_events_postgres(pg_url: str) -> None:
    _run_property(pg_url, 25)


H = datetime(2026, 1, 1, 10)


def test_a_later_event_of_a_counted_episode_only_grows_its_dwell_and_reach() -> None:
    key = ("u1", 7, H, None, "touch")
    old = Episode("s", "b", 2.0, 0)
    # the same episode again with a longer dwell and a slot: no new episode
    got = changes({key: Episode("s", "b", 5.0, 1)}, {key: old})
    delta = got.hours[("s", None, H, "b", "touch")]
    assert (delta.episodes, delta.dwell_sum, delta.dwell_n, delta.dwell_max, delta.at_slot) == (
        0, 3.0, 0, 5.0, 1,
    )  # fmt: skip
    # nothing larger: nothing to write
    assert changes({key: Episode("s", "b", 1.0, 0)}, {key: old}).episodes == {}
    # a first dwell for an episode that had none counts it in the mean
    got = changes({key: Episode("s", "b", 4.0, 0)}, {key: Episode("s", "b", None, 0)})
    delta = got.hours[("s", None, H, "b", "touch")]
    assert (delta.episodes, delta.dwell_sum, delta.dwell_n) == (0, 4.0, 1)


def _stored_before() -> list[ShelfEvent]:
    """Events of two units: an episode over two slots and into the next hour, one
    episode without a slot, events without an episode, a stock event."""
    rows = [  # unit, seq, minutes after T0, episode, label, slot, dwell
        ("u1", 1, 0, 7, "take", 0, 4.0),
        ("u1", 2, 1, 7, "take", 1, 6.0),
        ("u1", 3, 12, 7, "take", 1, 6.0),  # T0 + 12 min: the next hour
        ("u1", 4, 13, 8, "glance", None, None),
        ("u2", 1, 2, None, "touch", 2, 1.5),
        ("u2", 2, 2, None, "touch", 2, 2.5),
    ]
    evs = [
        ShelfEvent.model_validate(
            {
                **event(
                    f"mig-{unit}",
                    seq,
                    t=T0 + timedelta(minutes=minutes),
                    kind="interest",
                    label=label,
                    store="mig",
                    bay=f"bay-{unit}",
                    slot=slot,
                    sku=None if slot is None else SKUS[slot],
                    units=None,
                    dwell_s=dwell,
                ),
                "episode": episode,
            }
        )
        for unit, seq, minutes, episode, label, slot, dwell in rows
    ]
    stock = event("mig-u1", 5, t=T0, store="mig", bay="bay-u1", stock_units=3)
    return [*evs, ShelfEvent.model_validate(stock)]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_migrating_a_store_with_events_counts_their_interest(
    db: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url, pool_size=2)
    migrate(engine, "0014")  # the schema before interest was kept at ingest
    evs = _stored_before()
    mark = "?" if db == "sqlite" else "%s"
    insert = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join([mark] * len(EVENT_COLUMNS))})"
    with engine.begin() as conn:
        conn.exec_driver_sql(insert, driver_params(evs, db, datetime.now(UTC)))
    engine.dispose()
    store = open_store(url, pool_size=2)  # migrates to head, filling the hours tables
    try:
        with store.engine.connect() as conn:
            skus, bays = interest(
                conn, store=evs[0].store, sku=None, since=T0, until=T0 + timedelta(hours=1)
            )
        want_skus, want_bays = _expected(evs)
        _check(skus, want_skus, "sku")
        _check(bays, want_bays, "bay_id")
        assert sum(b.episodes for b in bays) == 5  # u1: 7 in each of two hours, 8; u2: 2 alone
    finally:
        store.dispose()
