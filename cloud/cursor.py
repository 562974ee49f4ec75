"""Opaque feed cursors: the last event id seen, signed with HMAC-SHA256.

A cursor is ``base64url(json) + "." + base64url(mac)``. The filters of the
query are part of what is signed, so a cursor cannot be replayed against
another filter, and any edit is detected (:class:`BadRequestError`, HTTP 400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

from cloud.errors import BadRequestError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and checks feed cursors with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a cursor secret needs at least 16 bytes")
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:16]

    def encode(self, last_id: int, filters: Mapping[str, str | None]) -> str:
        """A cursor meaning "after event ``last_id`` under ``filters``"."""
        body = json.dumps({"i": last_id, "f": dict(sorted(filters.items()))}, separators=(",", ":"))
        raw = body.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def decode(self, cursor: str, filters: Mapping[str, str | None]) -> int:
        """The last id in ``cursor``; refuses tampered cursors or other filters."""
        try:
            body_part, mac_part = cursor.split(".")
            raw = _unb64(body_part)
            mac = _unb64(mac_part)
        except (ValueError, TypeError) as err:
            raise BadRequestError("malformed cursor", field="cursor", code="bad_cursor") from err
        if not hmac.compare_digest(mac, self._mac(raw)):
            raise BadRequestError(
                "cursor signature does not match", field="cursor", code="bad_cursor"
            )
        doc = json.loads(raw)
        if doc.get("f") != dict(sorted(filters.items())):
            raise BadRequestError(
                "cursor was made for other filters", field="cursor", code="cursor_filter_mismatch"
            )
        last = doc.get("i")
        if not isinstance(last, int) or last < 0:
            raise BadRequestError("malformed cursor", field="cursor", code="bad_cursor")
        return last
