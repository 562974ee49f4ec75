"""Guessing claim codes is hopeless: every guess refused, the limits engaged, each counted."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from cloud.keys import Role
from cloud.settings import build_settings
from models.claim_code import new_code
from tests.cloud.support import Live, make_key, register_unit, serve

KEY = "A" * 43


def _settings(tmp_path: Path, **kw: float) -> object:
    return build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, db_pool_size=5, **kw
    )


def _open_code(live: Live) -> str:
    register_unit(live.store, "seed", "store-1", "bay-1")
    with live.client(make_key(live.store, Role.OPERATOR)) as c:
        made = c.post("/v1/claim-codes", json={"store_id": "store-1", "bay_id": "bay-1"})
    return str(made.json()["data"][0]["code"])


def _failures(live: Live) -> dict[str, int]:
    with live.client(make_key(live.store, Role.OPERATOR)) as c:
        doc = c.get("/v1/claim-codes").json()
    assert [d["state"] for d in doc["data"]] == ["open"], "no guess claimed the real code"
    failures: dict[str, int] = doc["failures"]
    return failures


@pytest.mark.slow(seconds=20)
def test_ten_thousand_guesses_from_one_source(tmp_path: Path) -> None:
    with serve(_settings(tmp_path)) as live:  # type: ignore[arg-type]
        real = _open_code(live)
        statuses: dict[int, int] = {}
        started = time.monotonic()
        with httpx.Client(base_url=live.url, timeout=30) as c:
            for _ in range(10_000):
                guess = new_code()
                if guess == real.replace("-", ""):
                    continue
                answer = c.post("/v1/claims", json={"code": guess, "public_key": KEY})
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 429:
                    assert int(answer.headers["Retry-After"]) >= 1
        elapsed = time.monotonic() - started
        failures = _failures(live)
    assert set(statuses) == {404, 429}, statuses
    looked_up = statuses[404]
    settings = live.settings
    assert looked_up <= settings.claim_burst + settings.claim_per_s * elapsed + 1
    assert failures["unknown_code"] == looked_up
    assert failures["rate_limited"] == statuses[429]


def test_guesses_spread_over_many_sources_are_held_per_code_group(tmp_path: Path) -> None:
    settings = _settings(tmp_path, claim_per_s=0)  # as if every guess came from a new address
    with serve(settings) as live:  # type: ignore[arg-type]
        _open_code(live)
        statuses: dict[int, int] = {}
        started = time.monotonic()
        with httpx.Client(base_url=live.url, timeout=30) as c:
            for _ in range(2_000):
                answer = c.post("/v1/claims", json={"code": new_code(), "public_key": KEY})
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        elapsed = time.monotonic() - started
        failures = _failures(live)
    groups = 32
    s = live.settings
    assert statuses.get(201, 0) == 0
    assert statuses[429] > 0
    assert statuses[404] <= groups * (s.claim_fail_burst + s.claim_fail_per_s * elapsed + 1)
    assert failures["unknown_code"] == statuses[404]
