"""Two API processes on one PostgreSQL behave as one service: one rate limit, one revocation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.keys import Role
from cloud.loopback import ServiceProcess
from cloud.shared_limits import lease
from cloud.store import open_store
from tests.cloud.support import make_key
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BURST = 20


@given(
    tokens=st.floats(0, 1000),
    elapsed=st.floats(0, 1e6),
    rate=st.floats(0.001, 1000),
    burst=st.integers(1, 1000),
    want=st.integers(1, 100),
)
def test_lease_never_grants_more_than_the_bucket_holds(
    tokens: float, elapsed: float, rate: float, burst: int, want: int
) -> None:
    tokens = min(tokens, float(burst))
    granted, left = lease(tokens, 100.0, 100.0 + elapsed, rate=rate, burst=burst, want=want)
    assert 0 <= granted <= want and left >= 0
    assert granted + left <= min(float(burst), tokens + elapsed * rate) + 1e-6


@contextmanager
def cloud_serve(url: str, log: Path) -> Iterator[str]:
    """``shelfsense cloud serve`` in its own process; yields its base URL."""
    env = {
        "SHELFSENSE_CLOUD_RATE_PER_S": "0.001",  # next to no refill during the test
        "SHELFSENSE_CLOUD_RATE_BURST": str(BURST),
    }
    service = ServiceProcess(url, log, env=env, cwd=ROOT)
    try:
        service.start(timeout=60)
        yield service.url
    finally:
        service.stop()


@pytest.mark.pg
@pytest.mark.slow
def test_two_api_processes_share_one_rate_limit_and_one_revocation(
    pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url, pool_size=1)
    backend = make_key(store, Role.BACKEND)
    operator = make_key(store, Role.OPERATOR)
    store.dispose()
    with cloud_serve(pg_url, tmp_path / "a.log") as a, cloud_serve(pg_url, tmp_path / "b.log") as b:
        answers = []
        for i in range(2 * BURST):
            url = a if i % 2 == 0 else b
            r = httpx.get(f"{url}/v1/stock", headers={"Authorization": f"Bearer {backend}"})
            answers.append(r.status_code)
        # one bucket of BURST for the key, not one per process (which would allow 2 × BURST);
        # a lease (BURST // 10) left unspent in the other process may go unused
        assert BURST - BURST // 10 <= answers.count(200) <= BURST
        assert answers.count(429) == 2 * BURST - answers.count(200)
        assert answers[-2:] == [429, 429]
        last = httpx.get(f"{b}/v1/stock", headers={"Authorization": f"Bearer {backend}"})
        assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1

        op = {"Authorization": f"Bearer {operator}"}
        key_id = next(
            k["key_id"]
            for k in httpx.get(f"{a}/v1/keys", headers=op).json()["data"]
            if k["role"] == "backend"
        )
        assert httpx.get(f"{b}/v1/keys", headers=op).status_code == 200  # b knows the key now
        assert httpx.delete(f"{a}/v1/keys/{key_id}", headers=op).status_code in (200, 204)
        wait_until(
            lambda: (
                (
                    httpx.get(f"{b}/v1/stock", headers={"Authorization": f"Bearer {backend}"})
                ).status_code
                == 401
            ),
            timeout=10,
        )
