"""Backoff with jitter, endpoint constants and the identity file, in memory and on disk."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.sync.backoff import Backoff
from edge.sync.endpoints import desired_url, url
from edge.sync.identity import IdentityError, load_identity


@given(
    initial=st.floats(0.01, 10),
    factor=st.floats(1, 100),
    failures=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
def test_delays_stay_within_the_growing_ceiling(
    initial: float, factor: float, failures: int, seed: int
) -> None:
    b = Backoff(initial_s=initial, max_s=initial * factor, rng=random.Random(seed))
    for n in range(failures):
        ceiling = min(initial * factor, initial * 2.0**n)
        d = b.next_delay()
        assert 0.0 <= d <= ceiling
    assert b.failures == failures


def test_ceiling_doubles_then_caps_and_reset_restarts() -> None:
    b = Backoff(initial_s=1, max_s=8, rng=random.Random(1))
    ceilings = []
    for _ in range(6):
        ceilings.append(b.ceiling())
        b.next_delay()
    assert ceilings == [1, 2, 4, 8, 8, 8]
    b.reset()
    assert b.ceiling() == 1


def test_jitter_spreads_delays() -> None:
    delays = set()
    for seed in range(20):
        b = Backoff(initial_s=1, max_s=60, rng=random.Random(seed))
        for _ in range(5):
            d = b.next_delay()
        delays.add(round(d, 6))
    assert len(delays) > 10  # a fleet does not come back in lockstep


def test_bad_bounds_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(initial_s=0, max_s=1)
    with pytest.raises(ValueError):
        Backoff(initial_s=5, max_s=1)


def test_endpoint_urls() -> None:
    assert url("http://c:8000/", "/v1/ingest/events") == "http://c:8000/v1/ingest/events"
    assert desired_url("http://c", "unit 7") == "http://c/v1/devices/unit%207/desired"


def test_identity_json_toml_and_errors(tmp_path: Path) -> None:
    j = tmp_path / "id.json"
    j.write_text(json.dumps({"device_id": "u-1", "api_key": "s3cret", "ca_file": "ca.pem"}))
    ident = load_identity(j)
    assert ident.device_id == "u-1" and ident.ca_file == str(tmp_path / "ca.pem")
    assert "s3cret" not in repr(ident)
    t = tmp_path / "id.toml"
    t.write_text('device_id = "u-2"\nmqtt_username = "u"\nmqtt_password = "p"\n')
    assert load_identity(t).mqtt_username == "u"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"device_id": "no spaces allowed"}))
    with pytest.raises(IdentityError, match="device_id"):
        load_identity(bad)
    with pytest.raises(IdentityError, match="no such"):
        load_identity(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(IdentityError, match="cannot parse"):
        load_identity(tmp_path / "junk.json")
