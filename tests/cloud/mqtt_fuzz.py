"""Fuzzing the MQTT ingest path with a live worker: whatever unit A sends, unit B is still served.

:func:`run_fuzz` drives hypothesis over three kinds of message from unit A — arbitrary
JSON, arbitrary bytes, and near-valid events (a valid event with one field replaced,
dropped, added, or pointed at another unit's bay) — published on A's events topic
through a real broker to a real :class:`cloud.mqtt_ingest.IngestWorker`. After every
message, unit B's next event must be stored and acked; at the end, everything stored
for A lies in A's own bay, and the worker never raised past its guards.
Used by ``tests/cloud/test_mqtt_fuzz.py`` (small) and ``make bench BENCH=mqtt_fuzz`` (large).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cloud import fleet
from cloud.checks import TimeBounds
from cloud.mqtt_ingest import IngestWorker
from cloud.schemas import SlotCreate
from cloud.store import Store
from cloud.store.tables import events
from tests.cloud.support import event, register_unit
from tests.support.mosquitto import Broker
from tests.support.mqtt_unit import MqttUnit

BOUNDS = TimeBounds(timedelta(minutes=5), timedelta(days=30))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["\u0000", "SKU\u0000", "\u001b[31m", "9999-12-31T23:59:59-05:00", 2**64]),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(event("unit-a", 1))


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid event of unit A with one thing wrong (or, sometimes, nothing wrong)."""
    ev: dict[str, Any] = {**event("unit-a", draw(st.integers(1, 10**6)), store="s1", bay="b1")}
    how = draw(st.sampled_from(["replace", "drop", "add", "tenant", "deep", "valid"]))
    if how == "replace":
        ev[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif how == "drop":
        ev.pop(draw(st.sampled_from(FIELDS)))
    elif how == "add":
        ev[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    elif how == "tenant":
        ev["store"], ev["bay"] = draw(st.sampled_from([("s1", "b2"), ("s2", "b1"), ("x", "y")]))
    elif how == "deep":
        depth = draw(st.integers(50, 3000))
        ev["features"] = {"x": json.loads("[" * min(depth, 400) + "]" * min(depth, 400))}
        if depth > 400:
            return (json.dumps(ev)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()
    return json.dumps(ev).encode()


messages = (
    near_valid() | json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=2048)
)


@dataclass
class FuzzReport:
    """What one fuzz run sent and what the worker did with it."""

    examples: int
    stored_a: int
    refused: int
    worker_errors: int
    seconds: float


def fuzz_fleet(store: Store) -> None:
    """Register unit A on s1/b1 (slot 0 holds SKU-1) and unit B on s1/b2."""
    register_unit(store, "unit-a", store_id="s1", bay="b1")
    register_unit(store, "unit-b", store_id="s1", bay="b2")
    with store.writer.begin() as conn:
        fleet.add_slot(conn, "s1", "b1", SlotCreate(slot=0, sku="SKU-1", unit_grams=100.0))


@contextmanager
def live_fleet(broker: Broker, store: Store) -> Iterator[tuple[IngestWorker, MqttUnit, MqttUnit]]:
    """Units A and B registered and connected, and one ingest worker storing into ``store``."""
    fuzz_fleet(store)
    worker = IngestWorker(
        store, host=broker.host, port=broker.port, bounds=BOUNDS, batch_wait_s=0.01
    )
    worker.start()
    assert worker.ready.wait(10)
    a = MqttUnit(broker.host, broker.port, "unit-a")
    b = MqttUnit(broker.host, broker.port, "unit-b")
    try:
        yield worker, a, b
    finally:
        a.close()
        b.close()
        worker.stop()


def run_fuzz(broker: Broker, store: Store, examples: int, *, progress: bool = False) -> FuzzReport:
    """Fuzz ``examples`` messages of unit A against a live worker; assert B is always served."""
    state = {"b": 0, "n": 0}
    started = time.monotonic()
    with live_fleet(broker, store) as (worker, a, b):
        _fuzz(worker, a, b, examples, state, progress=progress)
    return _report(store, state, worker, time.monotonic() - started)


def _fuzz(
    worker: IngestWorker,
    a: MqttUnit,
    b: MqttUnit,
    examples: int,
    state: dict[str, int],
    *,
    progress: bool,
) -> None:
    started = time.monotonic()

    @given(payload=messages)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def one(payload: bytes) -> None:
        a.publish(payload)
        state["b"] += 1
        seq = state["b"]
        when = datetime.now(UTC) - timedelta(seconds=1)
        b.publish(event("unit-b", seq, t=when, store="s1", bay="b2", slot=None, sku=None))
        assert b.wait(lambda: b.highest() >= seq), f"unit B's seq {seq} not acked"
        assert worker.errors == 0 and worker.down_reason() is None
        state["n"] += 1
        if progress and state["n"] % 200 == 0:
            print(f"  {state['n']} messages, {time.monotonic() - started:.0f} s", flush=True)

    one()


def _report(
    store: Store, state: dict[str, int], worker: IngestWorker, seconds: float
) -> FuzzReport:
    """Check where everything stored lies, and sum the run up."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.device_id, events.c.store_id, events.c.bay_id, func.count()).group_by(
                events.c.device_id, events.c.store_id, events.c.bay_id
            )
        ).all()
    where = {(d, s, bay): n for d, s, bay, n in rows}
    assert set(where) <= {("unit-a", "s1", "b1"), ("unit-b", "s1", "b2")}, where
    assert where.get(("unit-b", "s1", "b2")) == state["b"]
    return FuzzReport(
        examples=state["n"],
        stored_a=where.get(("unit-a", "s1", "b1"), 0),
        refused=worker.refused,
        worker_errors=worker.errors,
        seconds=seconds,
    )
