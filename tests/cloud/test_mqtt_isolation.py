"""One unit cannot hurt the fleet over MQTT: every poison message is refused alone, ingest goes on.

Against a real Mosquitto and a real :class:`cloud.mqtt_ingest.IngestWorker`, on SQLite
and on PostgreSQL: after each message unit A sends — nested too deep, too large, NUL
characters, out-of-bounds times, another unit's store or bay, a value the database
itself refuses, after its key was revoked — unit B's next event is still stored and
acked, and nothing of A's refused messages is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from cloud import fleet
from cloud.checks import TimeBounds
from cloud.keys import revoke_key
from cloud.mqtt_ingest import IngestWorker
from cloud.schemas import SlotCreate
from cloud.store import Store, open_store
from cloud.store.tables import api_keys, events
from tests.cloud.support import event, register_unit
from tests.support.mosquitto import Broker
from tests.support.mqtt_unit import MqttUnit
from tests.support.postgres import pg_schema
from tests.support.waiting import wait_until

BOUNDS = TimeBounds(timedelta(minutes=5), timedelta(days=30))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloud.db'}"
    else:
        with pg_schema() as url:
            yield url


class Fleet:
    """Two registered units on one broker with one live ingest worker."""

    def __init__(self, store: Store, broker: Broker, worker: IngestWorker) -> None:
        self.store, self.worker = store, worker
        self.a = MqttUnit(broker.host, broker.port, "unit-a")
        self.b = MqttUnit(broker.host, broker.port, "unit-b")
        self.b_seq = 0

    def b_still_served(self) -> None:
        """Unit B's next event is stored and acked."""
        self.b_seq += 1
        self.b.publish(event("unit-b", self.b_seq, store="s1", bay="b2", slot=None, sku=None))
        assert self.b.wait(lambda: self.b.highest() >= self.b_seq), f"B's seq {self.b_seq}"

    def stored(self, device_id: str) -> int:
        with self.store.engine.connect() as conn:
            q = select(func.count()).select_from(events).where(events.c.device_id == device_id)
            return int(conn.execute(q).scalar_one())


@pytest.fixture
def two_units(mosquitto: Broker, db_url: str) -> Iterator[Fleet]:
    store = open_store(db_url, pool_size=4)
    register_unit(store, "unit-a", store_id="s1", bay="b1")
    register_unit(store, "unit-b", store_id="s1", bay="b2")
    with store.writer.begin() as conn:
        fleet.add_slot(conn, "s1", "b1", SlotCreate(slot=0, sku="SKU-1", unit_grams=100.0))
    worker = IngestWorker(
        store, host=mosquitto.host, port=mosquitto.port, bounds=BOUNDS, batch_wait_s=0.02
    )
    worker.start()
    assert worker.ready.wait(10)
    f = Fleet(store, mosquitto, worker)
    try:
        yield f
    finally:
        f.a.close()
        f.b.close()
        worker.stop()
        store.dispose()


def a_event(seq: int, **kw: Any) -> dict[str, Any]:
    """A valid event of unit A (slot 0 of its bay holds SKU-1)."""
    return {**event("unit-a", seq, store="s1", bay="b1"), **kw}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


POISON: dict[str, bytes] = {
    # finding 1: ~2 KB of nesting killed the worker through json.loads in refused_seq
    "nested arrays": (
        json.dumps(a_event(101))[:-1] + f', "features": {{"x": {nested(1000)}}}}}'
    ).encode(),
    "nested, no seq": nested(5000).encode(),
    # finding 2: NUL in a name stopped ingest on PostgreSQL for good
    "NUL in sku": json.dumps(a_event(102, sku="SKU\u0000x")).encode(),
    "control char in sku": json.dumps(a_event(103, sku="SKU\u001bx")).encode(),
    # finding 4: another unit's store, bay, a store that does not exist, a slot of nobody
    "other bay, ahead": json.dumps(
        a_event(104, bay="b2", wall_time=(datetime.now(UTC) + timedelta(seconds=290)).isoformat())
    ).encode(),
    "other store": json.dumps(a_event(105, store="s2", bay="b9")).encode(),
    "unknown slot": json.dumps(a_event(106, slot=7)).encode(),
    "wrong sku": json.dumps(a_event(107, sku="SKU-2")).encode(),
    # finding 6: no length bound on strings
    "1 MB string": json.dumps(a_event(108, features={"note": "x" * 1_000_000})).encode(),
    "300-char feature": json.dumps(a_event(109, features={"note": "x" * 300})).encode(),
    # finding 7: extreme instants
    "year 1": json.dumps(a_event(110, wall_time="0001-01-01T00:00:00+05:00")).encode(),
    "year 9999": json.dumps(a_event(111, wall_time="9999-12-31T23:59:59-05:00")).encode(),
    "epoch number": json.dumps(a_event(112, wall_time=1_700_000_000)).encode(),
    "huge int": json.dumps(a_event(113, features={"n": 10**400})).encode(),
    "label of no kind": json.dumps(a_event(114, label="levitated")).encode(),
    "not JSON": b"\xff\xfe{garbage",
    "empty": b"",
    "another device's event": json.dumps(event("unit-b", 115, store="s1", bay="b2")).encode(),
}


@pytest.mark.mqtt
def test_no_message_of_one_unit_stops_another(two_units: Fleet) -> None:
    f = two_units
    f.b_still_served()
    for name, payload in POISON.items():
        f.a.publish(payload)
        f.b_still_served()
        assert f.worker.errors == 0, name
    assert f.stored("unit-a") == 0  # nothing A sent was stored
    assert f.worker.refused == len(POISON)
    assert f.worker.restarts == 0 and f.worker.down_reason() is None
    # A hears a refusal with a code for every message whose seq could be read
    readable = {102, 103, 104, 105, 106, 107, 109, 110, 111, 112, 113, 114, 115}
    assert f.a.wait(lambda: {r["seq"] for r in f.a.refusals()} >= readable)
    codes = {r["seq"]: r["reason"].split(":")[0] for r in f.a.refusals()}
    assert set(codes) == readable  # too deep or too large to read a seq from: not told
    assert codes[104] == "wrong_bay" and codes[105] == "wrong_store"
    assert codes[106] == "unknown_slot" and codes[107] == "wrong_sku"
    assert codes[102] == codes[110] == "invalid_event"
    # B never hears about A's messages, and A's refusals name only A's seqs
    assert not f.b.refusals()
    assert all(a["device_id"] == "unit-a" for a in f.a.acks)


@pytest.mark.mqtt
def test_a_value_the_database_refuses_is_refused_alone(two_units: Fleet, db_url: str) -> None:
    """A value the schema allows but the database refuses: bisected out, the rest stored."""
    f = two_units
    with f.store.writer.begin() as conn:
        if f.store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE events ADD CONSTRAINT no_poison CHECK (grams <> 666)"))
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.grams = 666 "
                    "BEGIN SELECT RAISE(ABORT, 'poison'); END"
                )
            )
    f.worker.batch_wait_s = 0.5  # so A's and B's messages share one batch
    for seq in range(1, 6):
        f.a.publish(a_event(seq, grams=666.0 if seq == 3 else -100.0))
        f.b.publish(event("unit-b", seq, store="s1", bay="b2", slot=None, sku=None))
    f.b_seq = 5
    assert f.b.wait(lambda: f.b.highest() == 5)
    assert f.a.wait(lambda: any(r["seq"] == 3 for r in f.a.refusals()))
    (refusal,) = f.a.refusals()
    assert refusal["reason"].startswith("unstorable")
    assert f.stored("unit-a") == 4 and f.a.highest() == 2  # 3 is refused, so 4 and 5 wait
    f.b_still_served()
    assert f.worker.errors == 0 and f.worker.down_reason() is None


@pytest.mark.mqtt
def test_a_revoked_unit_is_refused_at_once(two_units: Fleet) -> None:
    f = two_units
    f.a.publish(a_event(1))
    assert f.a.wait(lambda: f.a.highest() == 1)
    with f.store.writer.begin() as conn:
        for (key_id,) in conn.execute(
            select(api_keys.c.key_id).where(api_keys.c.device_id == "unit-a")
        ):
            revoke_key(conn, key_id)
    f.a.publish(a_event(2))
    assert f.a.wait(lambda: bool(f.a.refusals()))
    assert f.a.refusals()[0]["reason"].startswith("revoked_device")
    assert f.stored("unit-a") == 1
    f.b_still_served()


@pytest.mark.mqtt
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_storing_thread_is_restarted(two_units: Fleet, monkeypatch) -> None:
    """Should the storing thread die anyway, its supervisor starts a new one."""
    f = two_units
    worker = f.worker
    real = worker._gather
    calls = {"n": 0}

    def dying() -> list:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("simulated death of the storing thread")
        return real()

    monkeypatch.setattr(worker, "_gather", dying)
    assert f.b.wait(lambda: worker.restarts == 1, timeout=20)
    f.b_still_served()
    assert worker.down_reason() is None


@pytest.mark.mqtt
def test_health_is_503_naming_ingest_while_the_worker_cannot_work(
    mosquitto: Broker, tmp_path: Path
) -> None:
    from cloud.settings import build_settings
    from tests.cloud.support import serve

    s = build_settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        rate_per_s=0,
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
    )

    def health(live) -> tuple[int, dict]:
        r = live.client().get("/v1/health")
        return r.status_code, r.json()

    def wait_status(live, code: int) -> dict:
        wait_until(lambda: health(live)[0] == code, timeout=60)
        return health(live)[1]

    with serve(s, mqtt=True) as live:
        assert wait_status(live, 200)["ingest"] == "ok"
        mosquitto.stop()
        body = wait_status(live, 503)
        assert body["status"] == "down" and body["ingest"] == "down"
        assert "broker" in body["detail"] and body["database"] == "ok"
        mosquitto.start()
        assert wait_status(live, 200) == {
            "status": "ok",
            "database": "ok",
            "dialect": "sqlite",
            "ingest": "ok",
            "detail": None,
        }
