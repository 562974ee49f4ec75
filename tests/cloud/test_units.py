"""The pure parts: token buckets, cursors, key tokens, Mosquitto hashes, settings sources."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.cursor import CursorCodec
from cloud.errors import AuthenticationError, BadRequestError
from cloud.keys import mosquitto_hash, mosquitto_hash_py, mosquitto_verify, split_token
from cloud.ratelimit import TokenBuckets
from cloud.settings import build_settings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_allows_burst_then_rate() -> None:
    clock = Clock()
    b = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [b.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("k") == pytest.approx(0.5)
    assert b.take("other") == 0.0
    clock.t = 0.5
    assert b.take("k") == 0.0
    assert b.take("k") > 0
    clock.t = 100.0
    assert [b.take("k") for _ in range(3)] == [0.0] * 3  # refills only up to the burst
    assert b.take("k") > 0
    assert TokenBuckets(rate=0, burst=1).take("k") == 0.0


FILTERS = {"store": "s1", "sku": None, "type": "stock", "since": None}


@given(last=st.integers(0, 2**62))
def test_cursor_round_trip(last: int) -> None:
    codec = CursorCodec(b"k" * 32)
    assert codec.decode(codec.encode(last, FILTERS), FILTERS) == last


@given(pos=st.integers(0, 200), ch=st.sampled_from("AbZ09-_.x="))
def test_any_edit_of_a_cursor_is_refused(pos: int, ch: str) -> None:
    codec = CursorCodec(b"k" * 32)
    cur = codec.encode(1234, FILTERS)
    i = pos % len(cur)
    edited = cur[:i] + ch + cur[i + 1 :]
    if edited == cur:
        return
    try:
        got = codec.decode(edited, FILTERS)
    except BadRequestError as err:
        assert err.field == "cursor"
    else:  # base64 padding bits can absorb an edit: the meaning must then be unchanged
        assert got == 1234


def test_cursor_is_bound_to_filters_and_secret() -> None:
    codec = CursorCodec(b"k" * 32)
    cur = codec.encode(5, FILTERS)
    with pytest.raises(BadRequestError, match="other filters"):
        codec.decode(cur, {**FILTERS, "store": "s2"})
    with pytest.raises(BadRequestError, match="signature"):
        CursorCodec(b"j" * 32).decode(cur, FILTERS)


def test_token_format() -> None:
    assert split_token("ssk_abc123_secret-part") == "abc123"
    for bad in ("", "ssk_", "xx_abc_def", "ssk_a_b_c", "ssk_a!_b"):
        with pytest.raises(AuthenticationError):
            split_token(bad)


def test_python_mosquitto_hash_matches_mosquitto_passwd(tmp_path) -> None:
    h = mosquitto_hash_py("s3cret")
    assert h.startswith("$7$101$") and mosquitto_verify("s3cret", h)
    assert not mosquitto_verify("wrong", h)
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed")
    f = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(f), "alice", "s3cret"], check=True)
    theirs = f.read_text().strip().split(":", 1)[1]
    assert mosquitto_verify("s3cret", theirs)
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert mosquitto_hash_py("s3cret", salt=salt) == theirs
    assert mosquitto_verify("pw", mosquitto_hash("bob", "pw"))


def test_settings_priority_overrides_env_file(tmp_path, monkeypatch) -> None:
    f = tmp_path / "cloud.toml"
    f.write_text('database_url = "sqlite:///from-file.db"\nport = 9000\nrate_burst = 7\n')
    monkeypatch.setenv("SHELFSENSE_CLOUD_PORT", "9100")
    s = build_settings(f, rate_burst=9)
    assert (s.database_url, s.port, s.rate_burst) == ("sqlite:///from-file.db", 9100, 9)
    f.write_text("no_such_knob = 1\n")
    with pytest.raises(ValueError):
        build_settings(f)
    with pytest.raises(FileNotFoundError):
        build_settings(tmp_path / "missing.toml")


def test_refusal_log_is_bounded_per_minute(caplog) -> None:
    import logging

    from cloud.failures import RateLimitedLog

    clock = {"t": 0.0}
    logger = logging.getLogger("test.refusals")
    limited = RateLimitedLog(logger, per_minute=3, clock=lambda: clock["t"])
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for i in range(10):
            limited("refused %d", i)
        assert [r.getMessage() for r in caplog.records] == ["refused 0", "refused 1", "refused 2"]
        clock["t"] = 60.0
        limited("refused %d", 10)
    assert [r.getMessage() for r in caplog.records][3:] == [
        "7 more refusals in the last minute not logged",
        "refused 10",
    ]


def test_failures_split_into_database_away_and_value_refused() -> None:
    from sqlalchemy import exc as sa

    from cloud.failures import is_transient

    orig = Exception("boom")
    away = [
        sa.OperationalError("SELECT 1", {}, orig),
        sa.InterfaceError("SELECT 1", {}, orig),
        sa.ProgrammingError("SELECT 1", {}, orig),  # e.g. a table missing: the server's fault
        sa.TimeoutError("pool"),
        ConnectionError("reset"),
    ]
    refused = [
        sa.DataError("INSERT", {}, orig),  # NUL in text, a number out of range
        sa.IntegrityError("INSERT", {}, orig),  # a CHECK constraint
        ValueError("bad"),
        RecursionError("deep"),
    ]
    assert all(is_transient(e) for e in away)
    assert not any(is_transient(e) for e in refused)
