"""Console sessions and CSRF tokens: pure checks, any cookie a browser may send."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.console.charts import interest_heatmap
from cloud.console.session import Session, csrf_ok, csrf_token, read_session, sign_session

SECRET = b"k" * 32


def test_a_signed_session_reads_back_until_it_expires() -> None:
    s = Session("key1", "operator", "nonce", 100.0)
    cookie = sign_session(SECRET, s)
    assert read_session(SECRET, cookie, now=99.0) == s
    assert read_session(SECRET, cookie, now=100.0) is None
    assert read_session(b"other" * 8, cookie, now=1.0) is None
    body, mac = cookie.split(".")
    assert read_session(SECRET, f"{body}x.{mac}", now=1.0) is None


@given(st.text(max_size=300))
def test_any_cookie_is_refused_or_read_never_raises(cookie: str) -> None:
    assert read_session(SECRET, cookie, now=0.0) is None


@given(st.text(max_size=60), st.text(max_size=120))
def test_csrf_tokens_hold_only_for_their_nonce(nonce: str, token: str) -> None:
    assert csrf_ok(SECRET, nonce, token) == (bool(nonce) and token == csrf_token(SECRET, nonce))


def test_heatmap_shades_relative_to_the_busiest_hour() -> None:
    heat = interest_heatmap([("a", 9, 10, 0.5), ("a", 10, 1, None), ("b", 9, 0, None)])
    assert heat.peak == 10
    cells = dict(heat.rows)
    assert cells["a"][9].level == 5 and cells["a"][10].level == 1 and cells["b"][9].level == 0
    assert cells["a"][0].episodes == 0
