"""Sync over HTTP: gzip JSON EventBatch POSTed to the cloud, BatchAck back.

Every seq in the answer's ``stored`` and ``duplicates`` is durably stored in the
cloud, so the worker may mark those rows synced. Network failures, timeouts and 5xx
raise :class:`SyncUnavailable`; other refusals raise :class:`SyncRejected`. The same
session polls the desired state when there is no broker, and PUTs the unit's
health report (:meth:`HttpTransport.put_health`).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from pydantic import ValidationError

from edge.buffer.policy import Batch
from edge.sync.endpoints import (
    INGEST_EVENTS_PATH,
    PROBE_PATH,
    desired_url,
    health_url,
    reported_url,
    url,
)
from edge.sync.identity import Identity
from edge.sync.transport import SyncRefused, SyncRejected, SyncUnavailable, event_payloads
from models.wire import BatchAck

log = logging.getLogger(__name__)

EVENT_REFUSALS = frozenset({400, 413, 422})  # the body or one event in it is at fault
WHOLE_BATCH_CODES = frozenset({"device_mismatch"})  # with 403: the key is another device's
_EVENT_FIELD = re.compile(r"^events\.(\d+)(?:\.|$)")
MAX_RETRY_AFTER_S = 3600.0  # a longer wait asked for is taken as this
PROBE_TIMEOUT_S = 3.0


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    None when absent or unreadable; bounded to ``[0, MAX_RETRY_AFTER_S]``.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def refusal(status: int, text: str) -> SyncRejected:
    """The error for a 4xx answer to a batch: :class:`SyncRefused` when resending is futile.

    The cloud's JSON error names a ``code`` and, where one event is at fault, a
    ``field`` like ``events.3.wall_time``, which gives the event's place in the batch.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = str(doc.get("code") or "")
    field = str(doc.get("field") or "")
    what = f"POST events: HTTP {status} {code}: {str(doc.get('message') or text)[:200]}"
    if status == 403 and code in WHOLE_BATCH_CODES and field == "device_id":
        return SyncRefused(what, status=status, code=code, whole_batch=True)
    if status in EVENT_REFUSALS:
        m = _EVENT_FIELD.match(field)
        index = int(m.group(1)) if m and status != 413 else None
        return SyncRefused(what, status=status, code=code, index=index)
    return SyncRejected(what)


class HttpTransport:
    """POSTs event batches to ``{base_url}/v1/ingest/events`` with the unit's API key."""

    name = "http"
    acks_in_reply = True

    def __init__(
        self,
        base_url: str,
        identity: Identity,
        *,
        timeout_s: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url
        self.identity = identity
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        if identity.api_key:
            self.session.headers["Authorization"] = f"Bearer {identity.api_key}"
        if identity.ca_file:
            self.session.verify = identity.ca_file
        if identity.client_cert:
            self.session.cert = (
                (identity.client_cert, identity.client_key)
                if identity.client_key
                else identity.client_cert
            )

    def available(self) -> bool:
        """HTTP is tried whenever there is something to send."""
        return True

    def body(self, batch: Batch) -> bytes:
        """The gzip JSON EventBatch of ``batch`` (events kept as serialized)."""
        events = ",".join(event_payloads(batch))
        device = json.dumps(self.identity.device_id)
        return gzip.compress(f'{{"device_id":{device},"events":[{events}]}}'.encode(), 6)

    def send(self, batch: Batch) -> list[int]:
        """POST the batch; returns the seqs the cloud says are stored (new or duplicate)."""
        try:
            resp = self.session.post(
                url(self.base_url, INGEST_EVENTS_PATH),
                data=self.body(batch),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as err:
            raise SyncUnavailable(f"POST events: {err.__class__.__name__}: {err}") from err
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            wait = (
                retry_after(resp.headers.get("Retry-After"))
                if resp.status_code in (429, 503)
                else None
            )
            raise SyncUnavailable(f"POST events: HTTP {resp.status_code}", retry_after=wait)
        if resp.status_code >= 300:
            raise refusal(resp.status_code, resp.text)
        try:
            ack = BatchAck.model_validate_json(resp.content)
        except ValidationError as err:
            raise SyncRejected(f"POST events: answer is not a BatchAck: {err}") from err
        if ack.device_id != self.identity.device_id:
            raise SyncRejected(f"POST events: ack names device {ack.device_id!r}")
        return [*ack.stored, *ack.duplicates]

    def probe(self) -> bool:
        """True when ``GET /v1/health`` answers without a server error (the cloud is back)."""
        try:
            resp = self.session.get(
                url(self.base_url, PROBE_PATH), timeout=min(self.timeout_s, PROBE_TIMEOUT_S)
            )
        except requests.RequestException:
            return False
        return resp.status_code < 500

    def get_desired(self) -> Any | None:
        """The desired state document, or None when the cloud has none (204/404)."""
        try:
            resp = self.session.get(
                desired_url(self.base_url, self.identity.device_id), timeout=self.timeout_s
            )
        except requests.RequestException as err:
            raise SyncUnavailable(f"GET desired: {err}") from err
        if resp.status_code in (204, 404):
            return None
        if resp.status_code >= 500:
            raise SyncUnavailable(f"GET desired: HTTP {resp.status_code}")
        if resp.status_code >= 300:
            raise SyncRejected(f"GET desired: HTTP {resp.status_code}")
        return resp.content

    def put_health(self, report: bytes) -> None:
        """PUT a health report (``models.wire.HealthReport`` JSON) as the device's latest."""
        try:
            resp = self.session.put(
                health_url(self.base_url, self.identity.device_id),
                data=report,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as err:
            raise SyncUnavailable(f"PUT health: {err}") from err
        if resp.status_code >= 500:
            raise SyncUnavailable(f"PUT health: HTTP {resp.status_code}")
        if resp.status_code >= 300:
            raise SyncRejected(f"PUT health: HTTP {resp.status_code}")

    def post_reported(self, report: bytes) -> None:
        """POST an OTA report (``models.wire_fleet.OtaReport`` JSON) as the device's latest."""
        try:
            resp = self.session.post(
                reported_url(self.base_url, self.identity.device_id),
                data=report,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as err:
            raise SyncUnavailable(f"POST reported: {err}") from err
        if resp.status_code >= 500:
            raise SyncUnavailable(f"POST reported: HTTP {resp.status_code}")
        if resp.status_code >= 300:
            raise SyncRejected(f"POST reported: HTTP {resp.status_code}: {resp.text[:200]}")

    def close(self) -> None:
        """Close the session."""
        self.session.close()
