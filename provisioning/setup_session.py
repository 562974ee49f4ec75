"""Who may use the unit's setup page, decided without I/O.

The setup page is open on the store network only while the unit is in setup mode.
:class:`SetupSession` holds that mode's secrets and decides each request:

1. a six-digit PIN, shown on the unit's console (and label), signs a phone in; each
   wrong PIN is counted, and after ``max_failures`` the page refuses every PIN for
   ``lockout_s`` (a six-digit PIN then needs years to guess);
2. a signed-in phone holds a random session token (an HttpOnly cookie) and every form
   it posts carries the session's CSRF token, compared in constant time;
3. bodies are small (``max_body`` bytes) and must say their length;
4. once setup is finished, every request is answered 410 Gone.

The server shell (:mod:`provisioning.setup_server`) asks :meth:`SetupSession.decide`
and does what the :class:`Decision` says.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5
LOCKOUT_S = 15 * 60.0
MAX_BODY = 4096
PIN_DIGITS = 6
MAX_SESSIONS = 8


def new_pin() -> str:
    """A random six-digit PIN (leading zeros kept)."""
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What the decision needs of one HTTP request."""

    method: str
    path: str
    session: str | None = None  # the session cookie, if any
    csrf: str | None = None  # the form's CSRF field, once the body is read
    length: int | None = None  # Content-Length; None when absent


@dataclass(frozen=True, slots=True)
class Decision:
    """What to answer: ``ok`` to serve, else an HTTP status and a message for staff."""

    code: str
    status: int = 200
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the request may be served."""
        return self.code == "ok"


OPEN_PATHS = frozenset({"/", "/static/setup.css", "/static/setup.js"})


@dataclass
class SetupSession:
    """The setup mode's PIN, sessions, lockout and end (see the module docstring)."""

    pin: str = field(default_factory=new_pin)
    clock: Callable[[], float] = time.monotonic
    max_failures: int = MAX_FAILURES
    lockout_s: float = LOCKOUT_S
    max_body: int = MAX_BODY
    token: Callable[[], str] = lambda: secrets.token_urlsafe(32)
    failures: int = 0
    locked_until: float = 0.0
    finished: bool = False
    _sessions: dict[str, str] = field(default_factory=dict)  # session -> csrf

    def locked(self) -> bool:
        """True while wrong PINs keep every PIN out."""
        return self.clock() < self.locked_until

    def sign_in(self, typed: str) -> tuple[str | None, str]:
        """``(session, message)``: a new session for the right PIN, else None and why."""
        if self.finished:
            return None, "setup has ended"
        if self.locked():
            minutes = max(1, round((self.locked_until - self.clock()) / 60))
            return None, (
                f"too many wrong PINs: the setup page is locked for {minutes} more minute(s)"
            )
        typed = typed.strip()
        if hmac.compare_digest(typed.encode(), self.pin.encode()):
            self.failures = 0
            session, csrf = self.token(), self.token()
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session] = csrf
            return session, "signed in"
        self.failures += 1
        left = self.max_failures - self.failures
        if left <= 0:
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
            minutes = round(self.lockout_s / 60)
            return (
                None,
                f"wrong PIN: too many tries, the setup page is locked for {minutes} minutes",
            )
        return None, f"wrong PIN: {left} tr{'y' if left == 1 else 'ies'} left"

    def csrf_of(self, session: str | None) -> str | None:
        """The CSRF token of a live session, else None."""
        return self._sessions.get(session) if session else None

    def signed_in(self, session: str | None) -> bool:
        """True for a session this setup mode gave out."""
        return self.csrf_of(session) is not None

    def finish(self) -> None:
        """End setup mode: every session ends and every later request is answered 410."""
        self.finished = True
        self._sessions.clear()

    def admit(self, req: SetupRequest) -> Decision:
        """May the body of ``req`` be read? (mode, method and length; before any body)."""
        if self.finished:
            return Decision("gone", 410, "setup has ended; this unit's setup page is closed")
        if req.method not in ("GET", "POST"):
            return Decision("method", 405, "only GET and POST are answered here")
        if req.method == "POST":
            if req.length is None:
                return Decision("length_required", 411, "a form must say its length")
            if not 0 <= req.length <= self.max_body:
                return Decision("too_large", 413, f"forms are at most {self.max_body} bytes")
        return Decision("ok")

    def decide(self, req: SetupRequest) -> Decision:
        """May ``req`` be served? :meth:`admit`, then the session and the form's CSRF token."""
        first = self.admit(req)
        if not first.ok:
            return first
        if req.method == "POST":
            if req.path == "/pin":
                return Decision("ok")
            if not self.signed_in(req.session):
                return Decision("sign_in", 401, "sign in with the PIN shown on the unit first")
            want = self.csrf_of(req.session)
            got = req.csrf or ""
            if want is None or not hmac.compare_digest(got.encode(), want.encode()):
                return Decision(
                    "csrf", 403, "this form is out of date or not from this page: reload the page"
                )
            return Decision("ok")
        if req.path in OPEN_PATHS or self.signed_in(req.session):
            return Decision("ok")
        return Decision("sign_in", 401, "sign in with the PIN shown on the unit first")
