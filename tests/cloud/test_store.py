"""The store on both dialects: migrations match the tables, SQLite pragmas, PostgreSQL over HTTP."""

from __future__ import annotations

import concurrent.futures as cf
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from cloud.errors import StoreError
from cloud.keys import Role
from cloud.store import open_store
from cloud.store.engine import MIGRATIONS
from cloud.store.tables import metadata
from tests.cloud.support import Live, batch, count_events, event, make_key, register_unit

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # one head: a chain, no fork


def _no_drift(store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD


def test_sqlite_store_is_migrated_wal_and_reopens(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'c.db'}"
    store = open_store(url, pool_size=2)
    _no_drift(store)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    store.dispose()
    again = open_store(url, pool_size=2)  # migrating an up-to-date schema is a no-op
    _no_drift(again)
    again.dispose()
    with pytest.raises(StoreError):
        open_store("sqlite://", pool_size=1)
    with pytest.raises(StoreError):
        open_store("mysql://nowhere/db", pool_size=1)


def test_postgres_store_migrates_to_the_same_schema(pg_url: str) -> None:
    store = open_store(pg_url, pool_size=2)
    _no_drift(store)
    store.dispose()


def test_postgres_ingest_is_idempotent_under_concurrent_duplicates(pg_live: Live) -> None:
    tok = register_unit(pg_live.store, "unit-1")
    docs = [batch("unit-1", range(1 + 10 * (i % 4), 21 + 10 * (i % 4))) for i in range(12)]

    def send(doc):
        with pg_live.client(tok) as c:
            return c.post("/v1/ingest/events", json=doc)

    with cf.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, docs))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert count_events(pg_live.store, "unit-1") == 50
    assert sum(len(r.json()["stored"]) for r in answers) == 50  # each seq reported stored once
    assert max(r.json()["highest_contiguous"] for r in answers) == 50
    be = pg_live.client(make_key(pg_live.store, Role.BACKEND))
    ids = []
    cursor = None
    while True:
        page = be.get(
            "/v1/events", params={"limit": 7, **({"cursor": cursor} if cursor else {})}
        ).json()
        ids += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not page["data"]:
            break
    assert len(ids) == 50 and ids == sorted(ids)
    # interest and stock on PostgreSQL (date_trunc, upserts)
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    with pg_live.client(tok) as c:
        evs = [
            event("unit-1", 100 + i, kind="interest", label=lab, slot=None, dwell_s=2.0)
            for i, lab in enumerate(["touch", "take", "take"])
        ]
        evs.append(event("unit-1", 103, stock_units=7))
        assert (
            c.post("/v1/ingest/events", json={"device_id": "unit-1", "events": evs}).status_code
            == 200
        )
    got = be.get("/v1/interest", params={"since": since}).json()["data"]
    assert [(g["counts"], g["touch_to_take"], g["dwell_mean_s"]) for g in got] == [
        ({"touch": 1, "take": 2}, 2 / 3, 2.0)
    ]
    assert be.get("/v1/stock").json()["data"][0]["stock_units"] == 7
    doc = batch("unit-1", [51, 52])
    doc["events"][1]["sku"] = "x" * 65
    assert be.post("/v1/ingest/events", json=doc).status_code == 403
    with pg_live.client(tok) as c:
        assert c.post("/v1/ingest/events", json=doc).status_code == 422
        assert c.get("/v1/health").json() == {
            "status": "ok",
            "database": "ok",
            "dialect": "postgresql",
            "ingest": "off",
            "detail": None,
        }
    assert count_events(pg_live.store, "unit-1") == 54  # nothing of the refused batch
