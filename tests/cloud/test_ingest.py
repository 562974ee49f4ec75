"""HTTP ingest against the live app: idempotence, whole-or-nothing batches, bounds, bad input."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.settings import build_settings
from tests.cloud.support import Live, batch, count_events, event, gz, register_unit, serve

URL = "/v1/ingest/events"


def test_same_batch_twice_is_stored_once(live: Live) -> None:
    c = live.client(register_unit(live.store, "unit-1"))
    first = c.post(URL, json=batch("unit-1", range(1, 6)))
    again = c.post(URL, json=batch("unit-1", range(1, 6)))
    assert first.status_code == again.status_code == 200
    assert first.json()["stored"] == [1, 2, 3, 4, 5]
    assert again.json() == {
        "device_id": "unit-1",
        "stored": [],
        "duplicates": [1, 2, 3, 4, 5],
        "highest_contiguous": 5,
    }
    assert count_events(live.store, "unit-1") == 5


def test_gzip_body_and_highest_contiguous_over_a_gap(live: Live) -> None:
    c = live.client(register_unit(live.store, "unit-1"))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = c.post(URL, content=gz(batch("unit-1", [1, 2, 4, 5])), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["highest_contiguous"] == 2
    r = c.post(URL, content=gz(batch("unit-1", [3])), headers=headers)
    assert r.json() == {
        "device_id": "unit-1",
        "stored": [3],
        "duplicates": [],
        "highest_contiguous": 5,
    }


def test_one_bad_event_refuses_the_whole_batch(live: Live) -> None:
    c = live.client(register_unit(live.store, "unit-1"))
    doc = batch("unit-1", range(1, 5))
    doc["events"][2]["wall_time"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = c.post(URL, json=doc)
    assert r.status_code == 422
    assert r.json()["code"] == "event_from_future"
    assert r.json()["field"] == "events.2.wall_time"
    old = batch("unit-1", [1], t=datetime.now(UTC) - timedelta(days=400))
    r = c.post(URL, json=old)
    assert (r.status_code, r.json()["code"]) == (422, "event_too_old")
    other = batch("unit-1", [1, 2])
    other["events"][1]["device_id"] = "unit-9"
    r = c.post(URL, json=other)
    assert (r.json()["code"], r.json()["field"]) == ("device_mismatch", "events.1.device_id")
    assert count_events(live.store) == 0


def test_oversized_bodies_are_413_compressed_and_decoded(tmp_path) -> None:
    s = build_settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        max_body_bytes=4096,
        max_decoded_bytes=16384,
        rate_per_s=0,
    )
    with serve(s) as live:
        c = live.client(register_unit(live.store, "unit-1"))
        big = batch("unit-1", range(1, 60))
        raw = json.dumps(big).encode()
        assert len(raw) > 4096
        assert c.post(URL, content=raw).status_code == 413
        # small on the wire, big once decoded (a gzip bomb in miniature)
        bomb = gzip.compress(json.dumps({**big, "pad": " " * 100_000}).encode())
        assert len(bomb) < 4096
        r = c.post(URL, content=bomb, headers={"Content-Encoding": "gzip"})
        assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
        r = c.post(URL, content=b"not gzip", headers={"Content-Encoding": "gzip"})
        assert (r.status_code, r.json()["code"]) == (400, "malformed_gzip")
        r = c.post(URL, content=gz(batch("unit-1", [1])), headers={"Content-Encoding": "br"})
        assert r.status_code == 415
        assert count_events(live.store) == 0
        assert c.post(URL, json=batch("unit-1", [1])).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda d: d["events"][0].update(seq="seven"), 422, "invalid_value"),
        (lambda d: d["events"][0].update(confidence=3.5), 422, "invalid_value"),
        (lambda d: d["events"][0].update(kind="weather"), 422, "invalid_value"),
        (lambda d: d["events"][0].update(extra=1), 422, "unknown_field"),
        (lambda d: d.update(events=[]), 422, "invalid_value"),
        (lambda d: d["events"][0].pop("seq"), 422, "missing_field"),
    ],
)
def test_wrong_types_and_fields_name_the_field(live: Live, mutate, status, code) -> None:
    c = live.client(register_unit(live.store, "unit-1"))
    doc = batch("unit-1", [1, 2])
    mutate(doc)
    r = c.post(URL, json=doc)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message"]
    assert count_events(live.store) == 0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    field=st.sampled_from(sorted(event("u", 1))),
    value=json_values,
    raw=st.binary(max_size=64),
)
def test_random_bad_input_is_4xx_and_stores_nothing(live_once, field, value, raw) -> None:
    live, c = live_once
    before = count_events(live.store)
    doc = batch("unit-h", [1])
    doc["events"][0][field] = value
    r = c.post(URL, json=doc)
    assert r.status_code < 500
    if r.status_code != 200:
        assert 400 <= r.status_code < 500 and r.json()["code"]
        assert count_events(live.store) == before
    r = c.post(URL, content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    assert c.get("/v1/health").json()["status"] == "ok"


@pytest.fixture(scope="module")
def live_once(tmp_path_factory):
    """One app for every hypothesis example (starting one per example would be slow)."""
    path = tmp_path_factory.mktemp("h") / "c.db"
    with serve(build_settings(database_url=f"sqlite:///{path}", rate_per_s=0)) as running:
        token = register_unit(running.store, "unit-h")
        with running.client(token) as c:
            yield running, c


def test_http_client_gets_json_errors_for_unknown_routes(live: Live) -> None:
    r = httpx.get(live.url + "/v1/nothing-here")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


def test_every_bounded_body_route_documents_the_body_errors_it_answers(live: Live) -> None:
    """A route that reads its body under the bound answers 413 and 415 before its handler
    runs, whatever the method: each such route says so in the schema, and does it."""
    from cloud.api.routes.ingest import BoundedBodyRoute
    from cloud.keys import Role
    from cloud.loopback import make_key

    with live.client() as anon:
        spec = anon.get("/openapi.json").json()
    bounded = [
        (route.path, method.lower())
        for router in _routers()
        if router.route_class is BoundedBodyRoute
        for route in router.routes
        if isinstance(route, BoundedBodyRoute)
        for method in route.methods
    ]
    assert {p for p, _ in bounded} >= {URL, "/v1/devices", "/v1/devices/{device_id}/groups"}
    for path, method in bounded:
        documented = spec["paths"][path][method]["responses"]
        assert {"413", "415"} <= set(documented), f"{method.upper()} {path}: {sorted(documented)}"
    operator = make_key(live.store, Role.OPERATOR)
    register_unit(live.store, "unit-1")
    with live.client(operator) as c:
        r = c.post(
            "/v1/devices/unit-1/groups",
            content=json.dumps({"group": "north"}).encode(),
            headers={"Content-Type": "application/json", "Content-Encoding": "3)%g#s"},
        )
        assert (r.status_code, r.json()["code"]) == (415, "unsupported_encoding")
        ok = c.post("/v1/devices/unit-1/groups", json={"group": "north"})
        assert ok.status_code == 200 and "north" in ok.json()


def _routers() -> list:
    """Every APIRouter the route modules define."""
    import importlib
    import pkgutil

    from fastapi import APIRouter

    import cloud.api.routes as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, APIRouter)]
    return found
