"""A unit's health or OTA report over HTTP that is malformed or names another device is refused
with the right status and stores nothing (the MQTT path: tests/cloud/test_fleet_ingest.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cloud.store.tables import device_alarms, device_health, device_reported, device_status
from tests.cloud.support import Live, register_unit


def stored(live: Live) -> dict[str, int]:
    with live.store.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (device_health, device_status, device_alarms, device_reported)
        }


NOTHING = {"device_health": 0, "device_status": 0, "device_alarms": 0, "device_reported": 0}


def test_reports_naming_another_device_or_malformed_are_refused(live: Live) -> None:
    tok1 = register_unit(live.store, "unit-1")
    register_unit(live.store, "unit-2")
    u1 = live.client(tok1)
    t = datetime.now(UTC).timestamp()
    health = {"at": t, "alarms": {"camera_down": {"since": t, "detail": "x"}}}
    cases = [
        ("PUT", "/v1/devices/unit-2/health", json.dumps(health), 403, "device_mismatch"),
        ("PUT", "/v1/devices/ghost/health", json.dumps(health), 403, "device_mismatch"),
        ("POST", "/v1/devices/unit-2/reported", '{"state": "active", "version": 2}', 403, None),
        ("PUT", "/v1/devices/unit-1/health", "{not json", 400, "malformed_json"),
        ("PUT", "/v1/devices/unit-1/health", '{"at": "soon"}', 422, None),
        ("PUT", "/v1/devices/unit-1/health", '{"at": 1, "device_id": "unit-2"}', 422, None),
        ("PUT", "/v1/devices/unit-1/health", '{"at": 1, "interval_s": 0}', 422, None),
        ("PUT", "/v1/devices/unit-1/health", '{"at": 1, "buffer_depth": -1}', 422, None),
        ("POST", "/v1/devices/unit-1/reported", '{"state": "exploded"}', 422, None),
        ("POST", "/v1/devices/unit-1/reported", '{"state": "active", "version": -1}', 422, None),
        ("POST", "/v1/devices/unit-1/reported", "[]", 422, None),
    ]
    for method, path, body, status, code in cases:
        r = u1.request(method, path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, (path, body, r.text)
        assert "code" in r.json(), r.text
        if code:
            assert r.json()["code"] == code
    assert stored(live) == NOTHING


TOKENS: dict[str, str] = {}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(st.sampled_from(["at", "alarms", "components", "interval_s", "x"]), JSON)
)
def test_any_health_body_is_stored_or_refused_and_nothing_kept(live: Live, body: dict) -> None:
    if live.url not in TOKENS:  # one server for every example
        TOKENS[live.url] = register_unit(live.store, "unit-h")
    tok = TOKENS[live.url]
    before = stored(live)
    r = live.client(tok).put("/v1/devices/unit-h/health", content=json.dumps(body, allow_nan=True),
                             headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code != 200:
        assert stored(live) == before
