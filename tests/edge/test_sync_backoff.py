"""Backoff with jitter, endpoint constants and the identity file, in memory and on disk."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.sync.backoff import RETRY_AFTER_JITTER, Backoff
from edge.sync.config import SyncConfig
from edge.sync.endpoints import desired_url, url
from edge.sync.http import MAX_RETRY_AFTER_S, retry_after
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


def test_default_backoff_is_capped_at_tens_of_seconds() -> None:
    cfg = SyncConfig()
    b = Backoff(initial_s=cfg.backoff_initial_s, max_s=cfg.backoff_max_s)
    for _ in range(100):
        b.next_delay()
    assert 10 <= b.ceiling() <= 60


@given(wait=st.floats(0, 3600), failures=st.integers(0, 20), seed=st.integers(0, 2**32))
def test_a_wait_the_cloud_asked_for_is_kept_in_full_and_not_probed(
    wait: float, failures: int, seed: int
) -> None:
    b = Backoff(initial_s=1, max_s=30, rng=random.Random(seed))
    for _ in range(failures):
        b.next_delay()
    w = b.after_failure(retry_after=wait, probe=True)
    assert wait <= w.delay_s <= wait * (1 + RETRY_AFTER_JITTER)
    assert not w.probe
    assert b.failures == failures + 1


def test_an_unreachable_cloud_is_probed_a_refusing_one_is_not() -> None:
    b = Backoff(initial_s=1, max_s=30, rng=random.Random(3))
    assert b.after_failure(retry_after=None, probe=True).probe
    assert not b.after_failure(retry_after=None, probe=False).probe
    gaps = [b.probe_gap(2.0) for _ in range(50)]
    assert all(1.0 <= g <= 3.0 for g in gaps) and len(set(gaps)) > 1


def test_new_bounds_apply_and_keep_the_failure_count() -> None:
    b = Backoff(initial_s=1, max_s=300)
    for _ in range(10):
        b.next_delay()
    b.apply(initial_s=0.5, max_s=20)
    assert b.ceiling() == 20 and b.failures == 10
    with pytest.raises(ValueError):
        b.apply(initial_s=5, max_s=1)


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(" 2.5 ") == 2.5
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after("-3") == 0.0
    assert retry_after("99999999") == MAX_RETRY_AFTER_S
    assert retry_after(None) is None and retry_after("") is None
    assert retry_after("soon") is None and retry_after("nan") is None


@given(st.text(max_size=60))
def test_any_retry_after_header_gives_a_bounded_wait_or_none(value: str) -> None:
    got = retry_after(value)
    assert got is None or 0.0 <= got <= MAX_RETRY_AFTER_S
