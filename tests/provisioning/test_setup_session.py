"""SetupSession decisions in memory: PIN, lockout, sessions, CSRF, body size, the end."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provisioning.setup_session import SetupRequest, SetupSession, new_pin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session(clock: Clock | None = None) -> SetupSession:
    return SetupSession(pin="123456", clock=clock or Clock())


def post(path: str, sess: str | None, csrf: str | None, length: int | None = 10) -> SetupRequest:
    return SetupRequest("POST", path, sess, csrf, length)


def test_pins_are_six_digits() -> None:
    pins = {new_pin() for _ in range(50)}
    assert all(len(p) == 6 and p.isdigit() for p in pins) and len(pins) > 40


def test_the_right_pin_gives_a_session_with_its_own_csrf_token() -> None:
    s = session()
    sess, message = s.sign_in(" 123456 ")
    assert sess is not None and message == "signed in"
    csrf = s.csrf_of(sess)
    assert csrf and csrf != sess
    assert s.decide(post("/claim", sess, csrf)).ok
    assert s.decide(post("/claim", sess, None)).code == "csrf"
    assert s.decide(post("/claim", None, csrf)).code == "sign_in"
    assert s.decide(SetupRequest("GET", "/live", sess)).ok
    assert s.decide(SetupRequest("GET", "/live", None)).status == 401
    assert s.decide(SetupRequest("GET", "/", None)).ok  # the PIN form


def test_five_wrong_pins_lock_every_pin_out_for_a_while() -> None:
    clock = Clock()
    s = session(clock)
    said = [s.sign_in("654321")[1] for _ in range(4)]
    assert said[-1] == "wrong PIN: 1 try left"
    assert "locked for 15 minutes" in s.sign_in("000000")[1]
    assert s.locked()
    assert s.sign_in("123456")[0] is None
    clock.now += 15 * 60 - 1
    assert s.sign_in("123456")[0] is None
    clock.now += 2
    assert s.sign_in("123456")[0] is not None


def test_a_right_pin_resets_the_count() -> None:
    s = session()
    for _ in range(4):
        s.sign_in("1")
    assert s.sign_in("123456")[0] is not None
    assert s.sign_in("1")[1] == "wrong PIN: 4 tries left"


def test_bodies_must_be_small_and_say_their_length() -> None:
    s = session()
    assert s.admit(post("/pin", None, None, length=None)).status == 411
    assert s.admit(post("/pin", None, None, length=4097)).status == 413
    assert s.admit(post("/pin", None, None, length=-1)).status == 413
    assert s.admit(post("/pin", None, None, length=4096)).ok
    assert s.admit(SetupRequest("DELETE", "/", None, None, 0)).status == 405


def test_finished_setup_answers_gone_to_everything() -> None:
    s = session()
    sess, _ = s.sign_in("123456")
    csrf = s.csrf_of(sess)
    s.finish()
    for req in (
        SetupRequest("GET", "/", sess),
        SetupRequest("GET", "/static/setup.css"),
        post("/claim", sess, csrf),
        post("/pin", None, None),
    ):
        assert s.decide(req).status == 410
    assert s.sign_in("123456")[0] is None


@given(st.text(max_size=20).filter(lambda t: t.strip() != "123456"))
def test_no_other_typed_pin_signs_in(typed: str) -> None:
    s = session()
    assert s.sign_in(typed)[0] is None
    assert s.failures == 1


@given(st.text(max_size=60), st.text(max_size=60) | st.none())
def test_no_forged_session_or_token_is_served(sess: str, csrf: str | None) -> None:
    s = session()
    real, _ = s.sign_in("123456")
    assert real is not None
    want = s.csrf_of(real)
    d = s.decide(post("/finish", sess, csrf))
    assert d.ok == (sess == real and csrf == want)
    assert s.decide(post("/finish", real, csrf)).ok == (csrf == want)
