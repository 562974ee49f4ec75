"""The setup page's HTTP shell: stdlib ``http.server`` on the store network, setup mode only.

Every request goes through :meth:`SetupSession.decide` (PIN session, CSRF token,
body size, 410 once setup has ended); the unit's work is done by :class:`SetupUnit`
and the HTML by :mod:`provisioning.setup_page`. Forms post back and redirect to the
page (post/redirect/get), with the last message kept for the session; ``/live`` gives
the live weights and recent decisions as JSON for the page's script.

:class:`SetupServer` runs until setup is finished (then it answers 410 for
``linger_s`` and stops), its deadline passes, or :meth:`SetupServer.stop` is called.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from provisioning import setup_assets, setup_page
from provisioning.setup_session import SetupRequest, SetupSession
from provisioning.setup_unit import SetupUnit

COOKIE = "shelfsense_setup"
MAX_FIELD = 64  # no form field of the page is longer
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SetupServer(ThreadingHTTPServer):
    """The setup page's server (one per setup mode)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        session: SetupSession,
        unit: SetupUnit,
        *,
        linger_s: float = 10.0,
    ) -> None:
        super().__init__(address, _Handler)
        self.session = session
        self.unit = unit
        self.linger_s = linger_s
        self.lock = threading.Lock()
        self.messages: dict[str, tuple[str, bool]] = {}
        self.ended = threading.Event()
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        """``http://host:port`` it listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def end_setup(self) -> None:
        """Finish setup mode: sessions end, the load cells are let go, 410 from now on."""
        with self.lock:
            self.session.finish()
        self.unit.feed.close()
        self.ended.set()

    def stop(self) -> None:
        """Stop serving (from another thread)."""
        self._stop.set()

    def run(self, *, deadline_s: float | None = None) -> str:
        """Serve until the end (see the module docstring); returns why it stopped."""
        start = time.monotonic()
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2})
        thread.start()
        why = "stopped"
        try:
            while not self._stop.wait(0.2):
                if self.ended.is_set():
                    self._stop.wait(self.linger_s)
                    why = "finished"
                    break
                if deadline_s is not None and time.monotonic() - start > deadline_s:
                    self.end_setup()
                    why = "timed out"
                    break
        finally:
            self.shutdown()
            thread.join()
            self.server_close()
        return why


class _Handler(BaseHTTPRequestHandler):
    server: SetupServer
    server_version = "shelfsense-setup"
    sys_version = ""
    timeout = 15  # a phone that stops sending mid-request lets go of its thread

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console shows the PIN and the outcome, not every request."""

    # -- plumbing ------------------------------------------------------------------

    def _cookie(self) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw or len(raw) > 4096:
            return None
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel else None

    def _length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            return -1

    def _send(
        self,
        status: int,
        body: str,
        ctype: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        for k, v in {**HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, session: str | None = None) -> None:
        headers = {"Location": "/"}
        if session is not None:
            headers["Set-Cookie"] = f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"
        self._send(HTTPStatus.SEE_OTHER, "", "text/plain", headers)

    def _refuse(self, status: int, code: str, message: str) -> None:
        if code == "gone":
            self._send(status, setup_page.gone_page(message))
        else:
            self._send(status, setup_page.pin_page(message, bad=True))

    # -- requests ------------------------------------------------------------------

    def _handle(self) -> None:
        srv = self.server
        path = urlsplit(self.path).path
        req = SetupRequest(self.command, path, self._cookie(), None, self._length())
        with srv.lock:
            first = srv.session.admit(req)
        if not first.ok:
            self._refuse(first.status, first.code, first.message)
            return
        form: dict[str, str] = {}
        if self.command == "POST":
            raw = self.rfile.read(req.length or 0)
            try:
                pairs = parse_qs(raw.decode("utf-8"), max_num_fields=8, strict_parsing=False)
            except (UnicodeDecodeError, ValueError):
                self._send(400, setup_page.pin_page("the form could not be read", bad=True))
                return
            form = {k: v[0][:MAX_FIELD] for k, v in pairs.items() if v}
        with srv.lock:
            decision = srv.session.decide(replace(req, csrf=form.get("csrf")))
        if not decision.ok:
            self._refuse(decision.status, decision.code, decision.message)
            return
        if self.command == "GET":
            self._get(path, req.session)
        else:
            self._post(path, req.session, form)

    def do_GET(self) -> None:
        """Pages, assets and ``/live``."""
        self._handle()

    def do_POST(self) -> None:
        """The forms."""
        self._handle()

    def do_PUT(self) -> None:
        """Refused (405)."""
        self._handle()

    def do_DELETE(self) -> None:
        """Refused (405)."""
        self._handle()

    def _get(self, path: str, session: str | None) -> None:
        srv = self.server
        if path == "/static/setup.css":
            self._send(200, setup_assets.CSS, "text/css; charset=utf-8")
        elif path == "/static/setup.js":
            self._send(200, setup_assets.JS, "text/javascript; charset=utf-8")
        elif path == "/live":
            rows, note = srv.unit.decisions()
            claim, _ = srv.unit.claim_state()
            doc = {
                "slots": [{"slot": s.slot, "weight": s.weight} for s in srv.unit.slot_views()],
                "claim": claim,
                "decisions": rows,
                "decisions_note": note,
            }
            self._send(200, json.dumps(doc), "application/json")
        elif path == "/" and srv.session.signed_in(session):
            assert session is not None
            with srv.lock:
                message, bad = srv.messages.pop(session, ("", False))
                csrf = srv.session.csrf_of(session) or ""
            claim, claimed = srv.unit.claim_state()
            rows, note = srv.unit.decisions()
            state = setup_page.PageState(
                csrf=csrf,
                claim=claim,
                claimed=claimed,
                camera=srv.unit.camera_note,
                slots=srv.unit.slot_views(),
                decisions=rows,
                decisions_note=note,
                running=srv.unit.running,
                message=message,
                bad=bad,
            )
            self._send(200, setup_page.main_page(state))
        elif path == "/":
            self._send(200, setup_page.pin_page())
        else:
            self._send(404, setup_page.pin_page("no such page", bad=True))

    def _post(self, path: str, session: str | None, form: dict[str, str]) -> None:
        srv = self.server
        if path == "/pin":
            with srv.lock:
                new, message = srv.session.sign_in(form.get("pin", ""))
            if new is None:
                status = 429 if srv.session.locked() else 403
                self._send(status, setup_page.pin_page(message, bad=True))
            else:
                self._redirect(new)
            return
        assert session is not None
        if path == "/claim":
            result = srv.unit.claim(form.get("code", ""))
        elif path == "/calibrate":
            result = self._calibrate(form)
        elif path == "/start":
            result = srv.unit.start()
        elif path == "/finish":
            srv.end_setup()
            self._send(200, setup_page.gone_page("Setup is finished. The unit is in service."))
            return
        else:
            self._send(404, setup_page.pin_page("no such form", bad=True))
            return
        with srv.lock:
            srv.messages[session] = result
        self._redirect()

    def _calibrate(self, form: dict[str, str]) -> tuple[str, bool]:
        step = form.get("step", "")
        if step not in ("empty", "known"):
            return "Choose Tray is empty or Weight placed.", True
        try:
            slot = int(form.get("slot", ""))
        except ValueError:
            return "The form named no slot: reload the page.", True
        grams: float | None = None
        if step == "known":
            try:
                grams = float(form.get("grams", "").replace(",", "."))
            except ValueError:
                grams = None
            if grams is not None and not math.isfinite(grams):
                grams = None
        return self.server.unit.calibrate(slot, step, grams)
