"""Every error as JSON ``{code, message, field, details}``, and the responses routes declare.

Codes are stable; messages are for people. Request validation maps to
``malformed_json`` (400) or ``unknown_field`` / ``missing_field`` /
``invalid_value`` (422), with the dotted path of the first field at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.errors import CloudError, RateLimitedError
from cloud.schemas import ErrorPublic

log = logging.getLogger(__name__)

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _err(e: ErrorPublic, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(e.model_dump(), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


def _on_cloud_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CloudError)
    headers = None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after + 0.5)))}
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    body = ErrorPublic(code=exc.code, message=exc.message, field=exc.field)
    return _err(body, exc.status, headers)


def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [
        {
            "field": None if e.get("type") == "json_invalid" else _field(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in errors[:20]
    ]
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    if kind == "json_invalid":
        body = ErrorPublic(
            code="malformed_json",
            message=f"the body is not valid JSON: {first.get('ctx', {}).get('error', '')}",
            field=None,
            details=details,
        )
        return _err(body, 400)
    code = {"extra_forbidden": "unknown_field", "missing": "missing_field"}.get(
        kind, "invalid_value"
    )
    field = details[0]["field"] if details else None
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", ""))
    return _err(ErrorPublic(code=code, message=message, field=field, details=details), 422)


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, looking inside included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path."""
    path = request.url.path
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    body = ErrorPublic(code=code, message=str(exc.detail), field=None)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:  # one route per method: name them all, not the first one's
        headers["Allow"] = ", ".join(allowed_methods(request))
    return _err(body, exc.status_code, headers or None)


def _on_db(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database error: %s", exc)
    body = ErrorPublic(code="store_unavailable", message="the database is unavailable", field=None)
    return _err(body, 503)


def _on_unstorable(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database refuses (a guard behind the schemas): the caller's fault, not ours."""
    log.warning("value refused by the database: %s", str(exc).splitlines()[0][:300])
    body = ErrorPublic(
        code="invalid_value", message="a value in the request cannot be stored", field=None
    )
    return _err(body, 422)


def install(app: FastAPI) -> None:
    """Register the error handlers on ``app``."""
    app.add_exception_handler(CloudError, _on_cloud_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(OperationalError, _on_db)
    app.add_exception_handler(DataError, _on_unstorable)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    text = {
        400: "Bad request (malformed JSON, bad cursor, bad range)",
        401: "No API key, or an unknown or revoked one",
        403: "The key's role or device does not allow this",
        404: "Not found",
        409: "Already exists, or already used",
        410: "No longer valid (expired or revoked)",
        413: "Body too large (compressed or decoded)",
        415: "Unsupported Content-Encoding",
        422: "Invalid input: the field at fault is named",
        429: "Rate limit of this key reached; see Retry-After",
        503: "Database unavailable",
    }
    return {s: {"model": ErrorPublic, "description": text[s]} for s in statuses}


AUTH_ERRORS = responses(400, 401, 403, 422, 429, 503)
