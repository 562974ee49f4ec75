"""ETag / If-None-Match for read routes: a poll that finds nothing new costs a 304 and no body.

:func:`etag_response` tags a computed answer by its content. :class:`VersionedCache`
goes further for answers derived from a table with a change counter (stock):
the ETag is the counter plus the query, so a poll is answered (304, or the
cached body) without reading the table at all.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified since the ETag in If-None-Match"}
}


def etag_response(request: Request, model: BaseModel | bytes) -> Response:
    """``model`` as JSON (or JSON already written) with a strong ETag, or 304 when the
    caller already has it."""
    body = model if isinstance(model, bytes) else model.model_dump_json().encode()
    tag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    inm = request.headers.get("if-none-match")
    if inm is not None:
        offered = {t.strip().removeprefix("W/") for t in inm.split(",")}
        if tag in offered or "*" in offered:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _matches(request: Request, tag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is None:
        return False
    offered = {t.strip().removeprefix("W/") for t in inm.split(",")}
    return tag in offered or "*" in offered


class VersionedCache:
    """Answers keyed by query, valid while a change counter stays where it was."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 32 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # bodies held at most; one over an eighth of it is not kept
        self._bytes = 0
        self._entries: dict[Hashable, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}  # one computation per key at a time
        self.hits = 0
        self.misses = 0

    def respond(
        self,
        request: Request,
        version: int,
        key: Hashable,
        compute: Callable[[], BaseModel | bytes],
    ) -> Response:
        """304, the cached body, or ``compute()`` (a model, or its JSON) cached, with a
        version ETag."""
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
        tag = f'"v{version}-{digest}"'
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        if _matches(request, tag):
            return Response(status_code=304, headers=headers)

        def body() -> bytes:
            got = compute()
            return got if isinstance(got, bytes) else got.model_dump_json().encode()

        return Response(
            self.get(version, key, body), media_type="application/json", headers=headers
        )

    def get(self, version: int, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The bytes kept under ``key`` at ``version``, or ``compute()``'s, then kept.

        Requests that miss on the same key together wait for one computation (a
        store's answers after its interest changed, say) instead of each doing it."""
        body = self._hit(version, key)
        if body is not None:
            return body
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        try:
            with flight:
                body = self._hit(version, key)  # computed while this request waited
                if body is not None:
                    return body
                self.misses += 1
                body = compute()
                self._keep(version, key, body)
                return body
        finally:
            with self._lock:
                if self._flights.get(key) is flight and not flight.locked():
                    del self._flights[key]

    def _hit(self, version: int, key: Hashable) -> bytes | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == version:
                self.hits += 1
                return hit[1]
        return None

    def _keep(self, version: int, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes // 8:
            return
        with self._lock:
            full = self._bytes + len(body) > self.max_bytes
            if full or len(self._entries) >= self.max_entries:
                self._entries.clear()
                self._bytes = 0
            old = self._entries.get(key)
            self._bytes += len(body) - (len(old[1]) if old else 0)
            self._entries[key] = (version, body)
