"""``POST /v1/ingest/events``: a unit's batch, gzip allowed, bounded, stored whole or not at all.

Admission control (:mod:`cloud.admission`) lets the request in before its body is
read. The body is then read under ``max_body_bytes`` and, on ingest's own threads,
with ``Content-Encoding: gzip`` decoded under ``max_decoded_bytes`` (413 past
either), then parsed straight from bytes as :class:`models.wire.EventBatch` (the
schema is added to the OpenAPI components by :func:`add_wire_schemas`). The answer
lists what is now durably stored.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError

from cloud.api.deps import ServicesDep, UnitKey
from cloud.api.errors import responses
from cloud.checks import check_batch
from cloud.errors import BadRequestError, PayloadTooLargeError, UnsupportedEncodingError
from cloud.ingest import store_events
from cloud.ingest_procs import IngestContext
from cloud.tenancy import bind, registrations
from models.wire import BatchAck, EventBatch

EXAMPLE_BATCH = {
    "device_id": "unit-0007",
    "events": [
        {
            "device_id": "unit-0007",
            "seq": 1042,
            "wall_time": "2026-11-22T14:03:11.250000Z",
            "mono_time": 86412.5,
            "store": "store-12",
            "bay": "bay-3",
            "slot": 2,
            "sku": "SKU-000123",
            "kind": "stock",
            "label": "removal",
            "confidence": 0.94,
            "units": -1,
            "grams": -409.2,
            "stock_units": 11,
            "decided_by": "model",
            "model_version": 7,
        }
    ],
}


MAX_GZIP_MEMBERS = 64


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decode gzip ``data``, every member of it; :class:`PayloadTooLargeError` past ``limit``.

    A gzip stream may hold several members one after the other (RFC 1952); each is
    decoded, so nothing sent is silently ignored. Bytes after the last member that
    are not another member refuse the body.
    """
    out = bytearray()
    rest = data
    for _ in range(MAX_GZIP_MEMBERS):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(rest, limit + 1 - len(out))
        except zlib.error as err:
            raise BadRequestError(
                f"the body is not valid gzip: {err}", code="malformed_gzip"
            ) from err
        if len(out) > limit or d.unconsumed_tail:
            raise PayloadTooLargeError(f"the decoded body is larger than {limit} bytes")
        if not d.eof:
            raise BadRequestError("the gzip body is truncated", code="malformed_gzip")
        rest = d.unused_data
        if not rest:
            return bytes(out)
    raise BadRequestError(
        f"the gzip body has more than {MAX_GZIP_MEMBERS} members", code="malformed_gzip"
    )


class _BoundedRequest(Request):
    """A request whose body is read under the size bound, as sent (still encoded)."""

    @property
    def raw_body(self) -> bytes:
        """The body as sent (read by :class:`BoundedBodyRoute` before the handler runs)."""
        body: bytes = self._body
        return body

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit = self.app.state.services.settings.max_body_bytes
            declared = self.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
            content_encoding(self)  # an encoding we cannot decode is refused before reading
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


def content_encoding(request: Request) -> str:
    """``gzip`` or ``identity``; :class:`UnsupportedEncodingError` for anything else."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return encoding
    if encoding not in ("", "identity"):
        raise UnsupportedEncodingError(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none"
        )
    return "identity"


class BoundedBodyRoute(APIRoute):
    """A route whose body is size-bounded and may be gzip-encoded.

    Every request through it, whatever its method, has its body read under the bound and
    its Content-Encoding checked first, so every such route documents 413 and 415.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["responses"] = {**responses(413, 415), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            bounded = _BoundedRequest(request.scope, request.receive)
            await bounded.body()  # size and encoding errors reach the error handlers as they are
            return await original(bounded)

        return handler


def parse_batch(raw: bytes) -> EventBatch:
    """The body as an :class:`EventBatch`, parsed straight from JSON bytes (one pass, in Rust).

    Errors come out as FastAPI's own validation errors, so they are reported
    like those of any other route.
    """
    try:
        return EventBatch.model_validate_json(raw)
    except ValidationError as err:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
        raise RequestValidationError(errors) from None


BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/EventBatch"},
            "examples": {"one removal": {"value": EXAMPLE_BATCH}},
        }
    },
}
router = APIRouter(prefix="/v1/ingest", tags=["ingest"], route_class=BoundedBodyRoute)
EVENTS_PATH = "/v1/ingest/events"  # the path admission control guards


@router.post(
    "/events",
    response_model=BatchAck,
    responses=responses(400, 401, 403, 422, 429, 503),  # 413 and 415 come with the route class
    openapi_extra={"requestBody": BODY},
)
async def post_events(request: Request, key: UnitKey, services: ServicesDep) -> BatchAck:
    """Store a batch of the calling unit's events, oldest first; every seq is stored once.

    Send it as JSON, gzip-encoded (``Content-Encoding: gzip``, every member decoded)
    or not. A unit key posts only its own device's events (``device_id`` is the
    key's device, else 403 ``device_mismatch``), and each event's ``store`` and
    ``bay`` must be the device's registration and its ``slot``/``sku`` a slot
    registered on that bay (403 ``wrong_store``, ``wrong_bay``, ``unknown_slot``,
    ``wrong_sku``; a missing ``sku`` is filled from the slot).
    Wall times must lie within ``max_future_s`` ahead of and ``max_past_days``
    behind the cloud's clock (422 ``event_from_future``/``event_too_old``). The
    whole batch is refused (nothing stored) if one event fails; the error names
    it (``events.3.store``). ``stored`` + ``duplicates`` are durably stored now;
    a unit may drop exactly those from its outbox.

    When this server already stores as many batches as its database takes and its
    short queue is full, it answers 503 ``overloaded`` with ``Retry-After`` (seconds)
    without reading the body: send the same batch again after that long.
    """
    raw = request.raw_body if isinstance(request, _BoundedRequest) else b""
    gzipped = content_encoding(request) == "gzip"
    if services.ingest_pool is not None:  # reads keep this process's loop and interpreter lock
        ack = await services.ingest_pool.store(key.device_id, raw, gzipped=gzipped)
    else:
        ctx = IngestContext(services.store, services.bounds, services.settings.max_decoded_bytes)
        work = functools.partial(ingest_body, ctx, key.device_id, raw, gzipped=gzipped)
        # ingest has threads of its own: reads never queue behind it for one
        ack = await anyio.to_thread.run_sync(work, limiter=services.ingest_threads())
    services.ingest_counts.add(len(ack.stored), len(ack.duplicates))
    return ack


def ingest_body(
    ctx: IngestContext, key_device: str | None, raw: bytes, *, gzipped: bool
) -> BatchAck:
    """Decode, parse, check and store one batch as sent by ``key_device``; the ack of what is stored."""
    if gzipped:
        raw = gunzip_bounded(raw, ctx.max_decoded_bytes)
    batch = parse_batch(raw)
    now = datetime.now(UTC)
    check_batch(batch, now=now, bounds=ctx.bounds, key_device=key_device)
    with ctx.store.engine.connect() as conn:
        reg = registrations(conn, [batch.device_id]).get(batch.device_id)
    evs = [bind(ev, reg, where=f"events.{i}") for i, ev in enumerate(batch.events)]
    result = store_events(ctx.store, evs, now=now)
    d = batch.device_id
    return BatchAck(
        device_id=d,
        stored=list(result.stored.get(d, [])),
        duplicates=list(result.duplicates.get(d, [])),
        highest_contiguous=result.highest_contiguous[d],
    )


def add_wire_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Put :class:`EventBatch` and what it refers to into the OpenAPI components."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    js = EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
    comps.update(js.pop("$defs", {}))
    comps["EventBatch"] = js
    return schema
