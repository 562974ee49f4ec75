"""``/v1/devices/{id}/setup``: a unit announces its own setup page and PIN; operators read it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import Live, make_key, register_unit, serve


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with serve(build_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", rate_per_s=0)) as lv:
        yield lv


def body(**kw: object) -> dict[str, object]:
    return {"url": "http://192.0.2.2:8080/", "pin": "012345", "until": time.time() + 600, **kw}


def test_only_the_unit_itself_announces_and_operators_read_it(live: Live) -> None:
    key = register_unit(live.store, "unit-1")
    register_unit(live.store, "unit-2")
    operator = make_key(live.store, Role.OPERATOR)
    with live.client(key) as unit:
        assert unit.put("/v1/devices/unit-1/setup", json=body()).status_code == 200
        other = unit.put("/v1/devices/unit-2/setup", json=body())
        assert other.status_code == 403 and other.json()["code"] == "device_mismatch"
        assert unit.get("/v1/devices/unit-1/setup").status_code == 403  # operators read
    with live.client(operator) as op:
        got = op.get("/v1/devices/unit-1/setup").json()
        assert (got["pin"], got["url"]) == ("012345", "http://192.0.2.2:8080/")
        assert op.get("/v1/devices/unit-2/setup").status_code == 404
        assert op.put("/v1/devices/unit-1/setup", json=body()).status_code == 403
    with live.client(key) as unit:
        assert unit.delete("/v1/devices/unit-1/setup").status_code == 204
    with live.client(operator) as op:
        gone = op.get("/v1/devices/unit-1/setup")
    assert gone.status_code == 404 and "not in setup mode" in gone.json()["message"]


@pytest.mark.parametrize(
    "bad",
    [
        {"pin": "12345"},
        {"pin": "abcdef"},
        {"url": "javascript:alert(1)"},
        {"url": "http://x/" + "a" * 300},
        {"until": -1},
        {"extra": 1},
    ],
)
def test_a_bad_announcement_is_refused(live: Live, bad: dict[str, object]) -> None:
    key = register_unit(live.store, "unit-1")
    with live.client(key) as unit:
        answer = unit.put("/v1/devices/unit-1/setup", json=body(**bad))
    assert answer.status_code == 422 and answer.json()["message"]


def test_an_announcement_past_its_end_is_not_shown(live: Live) -> None:
    key = register_unit(live.store, "unit-1")
    with live.client(key) as unit:
        assert unit.put("/v1/devices/unit-1/setup", json=body(until=time.time() - 1)).is_success
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        assert op.get("/v1/devices/unit-1/setup").status_code == 404
