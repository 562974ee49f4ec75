"""The setup page's guards over real HTTP: PIN lockout, CSRF, body size, 410 after the end.

Each request is sent alone (no cookie jar), with exactly the session cookie it names.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from provisioning.setup_server import COOKIE
from tests.provisioning.setup_support import setup_mode


def send(
    method: str,
    url: str,
    session: str | None = None,
    data: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"Cookie": f"{COOKIE}={session}"} if session else {}
    return httpx.request(method, url, data=data, headers=headers, timeout=30)


def sign_in(url: str, pin: str) -> tuple[str, str]:
    """A session cookie and the page's CSRF token."""
    r = send("POST", f"{url}/pin", data={"pin": pin})
    assert r.status_code == 303, r.text
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    session = r.cookies[COOKIE]
    page = send("GET", f"{url}/", session)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return session, found.group(1)


def test_five_wrong_pins_lock_the_page_even_for_the_right_one(tmp_path: Path) -> None:
    with setup_mode(tmp_path) as su:
        wrong = "000000" if su.session.pin != "000000" else "111111"
        answers = [send("POST", f"{su.url}/pin", data={"pin": wrong}) for _ in range(5)]
        assert [a.status_code for a in answers[:4]] == [403] * 4
        assert "wrong PIN: 1 try left" in answers[3].text
        assert answers[4].status_code == 429 and "locked for 15 minutes" in answers[4].text
        right = send("POST", f"{su.url}/pin", data={"pin": su.session.pin})
        assert right.status_code == 429 and COOKIE not in right.cookies
        assert "too many wrong PINs" in right.text
        assert send("GET", f"{su.url}/live").status_code == 401


def test_forms_need_the_session_and_its_csrf_token(tmp_path: Path) -> None:
    with setup_mode(tmp_path) as su:
        url = su.url
        assert send("GET", f"{url}/").status_code == 200  # the PIN form
        assert send("POST", f"{url}/claim", data={"code": "7KQ2M-XB9D4"}).status_code == 401
        session, csrf = sign_in(url, su.session.pin)
        refused = send("POST", f"{url}/calibrate", session, {"slot": "0", "step": "empty"})
        assert refused.status_code == 403 and "out of date" in refused.text
        forged = {"slot": "0", "step": "empty", "csrf": "x" * 43}
        assert send("POST", f"{url}/calibrate", session, forged).status_code == 403
        other, _ = sign_in(url, su.session.pin)  # another phone's session, this one's token
        assert send("POST", f"{url}/finish", other, {"csrf": csrf}).status_code == 403
        big = send("POST", f"{url}/claim", session, {"csrf": csrf, "code": "x" * 5000})
        assert big.status_code == 413
        nine = {"csrf": csrf, "slot": "9", "step": "empty"}
        assert send("POST", f"{url}/calibrate", session, nine).status_code == 303
        assert "There is no slot 9" in send("GET", f"{url}/", session).text
        assert send("POST", f"{url}/start", session, {"csrf": csrf}).status_code == 303
        assert "Claim the unit first (step 1)." in send("GET", f"{url}/", session).text
        assert su.agents == [] and not su.unit.running
        assert send("PUT", f"{url}/", session).status_code == 405
        live = send("GET", f"{url}/live", session).json()
        assert [s["slot"] for s in live["slots"]] == [0, 1]
        assert not su.server.ended.is_set()


def test_after_finish_every_request_is_gone(tmp_path: Path) -> None:
    with setup_mode(tmp_path, linger_s=30) as su:
        session, csrf = sign_in(su.url, su.session.pin)
        done = send("POST", f"{su.url}/finish", session, {"csrf": csrf})
        assert done.status_code == 200 and "Setup is finished" in done.text
        assert send("GET", f"{su.url}/", session).status_code == 410
        assert send("POST", f"{su.url}/pin", data={"pin": su.session.pin}).status_code == 410
        assert send("GET", f"{su.url}/static/setup.css").status_code == 410
