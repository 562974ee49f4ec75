"""A loopback HTTP proxy in front of the cloud that cuts target downloads in the middle.

For the first ``cuts`` requests of a TUF target it relays the status and headers of
the cloud's answer (``Content-Length`` of the whole body, ``Content-Range`` when the
cloud honoured a range) but only the first half of the body, then closes the
connection: the client sees a body shorter than announced. Metadata passes whole.
``honour_range=False`` drops the client's ``Range`` header (a server without ranges).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx


@dataclass
class CutProxy:
    """What the proxy did: target requests seen, ranges asked, bytes of body sent."""

    upstream: str
    cuts: int
    honour_range: bool = True
    url: str = ""
    requests: int = 0
    ranges: list[str] = field(default_factory=list)
    body_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    proxy: CutProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        p = self.proxy
        target = self.path.startswith("/v1/tuf/targets/")
        headers = {}
        asked = self.headers.get("Range")
        if asked and p.honour_range:
            headers["Range"] = asked
        got = httpx.get(p.upstream + self.path, headers=headers, timeout=10)
        body = got.content
        cut = False
        with p.lock:
            if target:
                p.requests += 1
                if asked:
                    p.ranges.append(asked)
                cut = p.requests <= p.cuts
            sent = body[: max(1, len(body) // 2)] if cut else body
            p.body_bytes += len(sent) if target else 0
        self.send_response(got.status_code)
        for name in ("Content-Type", "Content-Range", "Accept-Ranges"):
            if name in got.headers:
                self.send_header(name, got.headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(sent)
        self.wfile.flush()
        if cut:
            self.close_connection = True


@contextmanager
def cut_proxy(upstream: str, cuts: int, *, honour_range: bool = True) -> Iterator[CutProxy]:
    """Run a :class:`CutProxy` on a free loopback port."""
    proxy = CutProxy(upstream.rstrip("/"), cuts, honour_range)
    handler = type("Handler", (_Handler,), {"proxy": proxy})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
