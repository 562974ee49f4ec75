"""What an HTTP caller sends is bounded and refused with a clear error, never a 500 (SQLite and PostgreSQL).

Regressions of an outside attack run: NUL characters in events, names and query
strings; extreme instants; megabyte strings inside a small gzip body; a second gzip
member; another unit's bay; a 405 that named one method of two; failed logins never
limited; a revoked key that kept working for seconds.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloud.api.services import KeyCache
from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import Live, batch, count_events, gz, make_key, register_unit, serve
from tests.support.postgres import pg_schema

URL = "/v1/ingest/events"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_live(request: pytest.FixtureRequest, tmp_path) -> Iterator[Live]:
    """The app under uvicorn on SQLite, then on PostgreSQL; failed-login limit small."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.db'}"
        with serve(build_settings(database_url=url, rate_per_s=0, auth_fail_burst=5)) as live:
            yield live
    else:
        with (
            pg_schema() as url,
            serve(build_settings(database_url=url, rate_per_s=0, auth_fail_burst=5)) as live,
        ):
            yield live


def error(r: Any) -> tuple[int, str, str | None]:
    body = r.json()
    return r.status_code, body["code"], body.get("field")


def test_nul_and_control_characters_are_refused_everywhere(any_live: Live) -> None:
    unit = register_unit(any_live.store, "u1", store_id="s1", bay="b1")
    op = any_live.client(make_key(any_live.store, Role.OPERATOR))
    with any_live.client(unit) as c:
        doc = batch("u1", [1], store="s1", bay="b1", sku="SKU\u0000x")
        assert error(c.post(URL, json=doc)) == (422, "invalid_value", "events.0.sku")
        doc = batch("u1", [1], store="s1\u0000", bay="b1")
        assert error(c.post(URL, json=doc)) == (422, "invalid_value", "events.0.store")
        doc = batch("u1", [1], store="s1", bay="b1")
        doc["events"][0]["features"] = {"k\u0000": 1}
        assert c.post(URL, json=doc).status_code == 422
    for path in ("/v1/stock", "/v1/stock/skus", "/v1/events", "/v1/interest"):
        for name in ("store", "sku"):
            r = op.get(path, params={name: "s\u00001"})
            assert error(r) == (422, "invalid_value", name), (path, name)
    assert op.get("/v1/events", params={"cursor": "a\u0000b"}).status_code == 422
    assert error(op.post("/v1/stores", json={"store_id": "s9", "name": "Main\u0000St"}))[0] == 422
    slot = {"slot": 1, "sku": "A\u0007B", "unit_grams": 10.0}
    assert op.post("/v1/stores/s1/bays/b1/slots", json=slot).status_code == 422
    assert count_events(any_live.store) == 0
    assert op.get("/v1/health").json()["status"] == "ok"


def test_extreme_instants_are_refused_not_500(any_live: Live) -> None:
    op = any_live.client(make_key(any_live.store, Role.OPERATOR))
    for since in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1700000000"):
        for path in ("/v1/events", "/v1/interest", "/v1/labels/export", "/v1/labels/windows"):
            r = op.get(path, params={"since": since})
            assert error(r) == (422, "invalid_value", "since"), (path, since, r.text)
    ok = op.get("/v1/events", params={"since": "2026-01-01T00:00:00+14:00"})
    assert ok.status_code == 200


def test_a_repeated_query_parameter_is_refused(any_live: Live) -> None:
    op = any_live.client(make_key(any_live.store, Role.OPERATOR))
    r = op.get("/v1/stock?sku=A&sku=B")
    assert error(r) == (422, "invalid_value", "sku")


def test_megabyte_strings_in_a_small_gzip_body_are_refused(any_live: Live) -> None:
    unit = register_unit(any_live.store, "u1", store_id="s1", bay="b1")
    doc = batch("u1", [1], store="s1", bay="b1")
    doc["events"][0]["features"] = {"note": "x" * 7_000_000}
    body = gz(doc)
    assert len(body) < 16_000
    with any_live.client(unit) as c:
        r = c.post(URL, content=body, headers={"Content-Encoding": "gzip"})
        code = error(r)
        assert code[:2] == (422, "invalid_value") and code[2].startswith("events.0.features.note")
    assert count_events(any_live.store) == 0


def test_every_gzip_member_is_read(any_live: Live) -> None:
    unit = register_unit(any_live.store, "u1", store_id="s1", bay="b1")
    text = json.dumps(batch("u1", [1, 2], store="s1", bay="b1")).encode()
    half = len(text) // 2
    two = gzip.compress(text[:half]) + gzip.compress(text[half:])  # one document, two members
    with any_live.client(unit) as c:
        r = c.post(URL, content=two, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 200 and r.json()["stored"] == [1, 2]
        extra = gzip.compress(text) + gzip.compress(b'{"smuggled": 1}')  # once ignored
        r = c.post(URL, content=extra, headers={"Content-Encoding": "gzip"})
        assert error(r)[:2] == (400, "malformed_json")
        trailing = gzip.compress(text) + b"garbage after the member"
        r = c.post(URL, content=trailing, headers={"Content-Encoding": "gzip"})
        assert error(r)[:2] == (400, "malformed_gzip")
    assert count_events(any_live.store) == 2


def test_a_unit_touches_only_its_own_bay(any_live: Live) -> None:
    a = register_unit(any_live.store, "unit-a", store_id="s1", bay="b1")
    register_unit(any_live.store, "unit-b", store_id="s1", bay="b2")
    with any_live.client(a) as c:
        cases = [
            (dict(store="s2", bay="b9"), (403, "wrong_store", "events.0.store")),
            (dict(store="s1", bay="b2", stock_units=0), (403, "wrong_bay", "events.0.bay")),
            (dict(store="nowhere", bay="b1"), (403, "wrong_store", "events.0.store")),
        ]
        for kw, expected in cases:
            assert error(c.post(URL, json=batch("unit-a", [1], **kw))) == expected
        doc = batch("unit-b", [1], store="s1", bay="b2")
        assert error(c.post(URL, json=doc)) == (403, "device_mismatch", "device_id")
    assert count_events(any_live.store) == 0


def test_405_names_every_method_of_the_path(any_live: Live) -> None:
    op = any_live.client(make_key(any_live.store, Role.OPERATOR))
    r = op.delete("/v1/devices/u1/desired")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "PUT"}
    r = op.patch(URL)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_failed_logins_are_limited_per_source(any_live: Live) -> None:
    good = make_key(any_live.store, Role.BACKEND)
    bad = any_live.client("ssk_0123456789ab_guessed")
    codes = [bad.get("/v1/stock").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    r = bad.get("/v1/stock")
    assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    # the source is held off whatever it sends now: guessing costs a second a try
    assert any_live.client(good).get("/v1/stock").status_code == 429
    assert any_live.client().get("/v1/health").status_code == 200  # no key needed there


def test_revocation_reaches_another_process_within_its_cache_time(any_live: Live) -> None:
    """Two API processes on one database: a key revoked through one stops in the other."""
    unit = register_unit(any_live.store, "u1", store_id="s1", bay="b1")
    op = any_live.client(make_key(any_live.store, Role.OPERATOR))
    settings = any_live.settings.model_copy(update={"auth_fail_burst": 100})
    with serve(settings) as other:
        doc = batch("u1", [1], store="s1", bay="b1")
        assert other.client(unit).post(URL, json=doc).status_code == 200  # now in its cache
        key_id = unit.split("_")[1]
        assert op.delete(f"/v1/keys/{key_id}").status_code == 200
        assert any_live.client(unit).post(URL, json=doc).status_code == 401  # this process: at once
        # the other process: ingest checks the device's live key in the store, so nothing
        # more is stored at once, even while that process still trusts its cached key
        r = other.client(unit).post(URL, json=batch("u1", [2], store="s1", bay="b1"))
        assert r.status_code == 401 or error(r)[1] == "revoked_device"
        reader = make_key(any_live.store, Role.BACKEND)
        assert other.client(reader).get("/v1/stock").status_code == 200  # cached there now
        assert op.delete(f"/v1/keys/{reader.split('_')[1]}").status_code == 200
        codes = []
        for _ in range(10_000):  # reads: refused once the other process's cache entry expires
            codes.append(other.client(reader).get("/v1/stock").status_code)
            if codes[-1] == 401:
                break
        assert codes[-1] == 401 and set(codes) <= {200, 401}
    assert count_events(any_live.store, "u1") == 1


def test_key_cache_trusts_a_key_no_longer_than_its_ttl(tmp_path) -> None:
    from cloud.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", pool_size=2)
    token = make_key(store, Role.BACKEND)
    clock = {"t": 100.0}
    cache = KeyCache(ttl=0.5, clock=lambda: clock["t"])
    assert cache.lookup(store, token).revoked_at is None
    from cloud.keys import revoke_key

    with store.writer.begin() as conn:
        revoke_key(conn, token.split("_")[1])
    clock["t"] += 0.49
    assert cache.lookup(store, token).revoked_at is None  # still trusted within the TTL
    clock["t"] += 0.02
    from cloud.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        cache.lookup(store, token)
    assert build_settings().key_cache_s <= 1.0
    store.dispose()


def test_openapi_states_the_bounds(any_live: Live) -> None:
    doc = any_live.client().get("/openapi.json").json()
    comps = doc["components"]["schemas"]
    ev = comps["ShelfEvent"]["properties"]
    assert ev["wall_time"]["pattern"].startswith("^2[01]")
    assert "2000-2199" in ev["wall_time"]["description"]
    assert ev["store"]["pattern"] == ev["bay"]["pattern"] == "^[A-Za-z0-9_.-]{1,64}$"
    sku = next(s for s in ev["sku"]["anyOf"] if s.get("type") == "string")
    assert sku["maxLength"] == 64 and "\\x00" in sku["pattern"]
    ingest = doc["paths"]["/v1/ingest/events"]["post"]
    assert "registration" in ingest["description"] and "own device" in ingest["description"]
    params = {p["name"]: p for p in doc["paths"]["/v1/events"]["get"]["parameters"]}
    assert "pattern" in params["since"]["schema"]["anyOf"][0]
