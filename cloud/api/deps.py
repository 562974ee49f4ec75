"""Dependencies of the routes, as ``Annotated`` aliases: services, a read connection, the caller's key.

Those that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency on a
worker thread, and a read would otherwise hop threads (and wait for the
interpreter lock) once per dependency before its query even starts. Those that
do (the key lookup on a cache miss, ``get_conn``) run only for a request that
already holds a database slot (:mod:`cloud.api.db_gate`), so they never wait on
a thread for a connection that only a thread-starved request could give back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection

from cloud.api.services import Services
from cloud.desired_publish import DesiredPublisher
from cloud.errors import (
    AuthenticationError,
    ForbiddenError,
    InvalidRequestError,
    RateLimitedError,
)
from cloud.keys import ApiKey, Role

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer ssk_…`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: ssk_…`")


async def get_services(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_desired_publisher(request: Request) -> DesiredPublisher | None:
    """The app's desired-state publisher (None when it has no broker)."""
    publisher: DesiredPublisher | None = getattr(request.app.state, "desired_publisher", None)
    return publisher


DesiredPublisherDep = Annotated[DesiredPublisher | None, Depends(get_desired_publisher)]


def get_conn(services: ServicesDep) -> Iterator[Connection]:
    """A read connection for one request (writes open their own transaction)."""
    with services.store.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]


async def single_values(request: Request) -> None:
    """Refuse a query parameter given more than once (every parameter here takes one value)."""
    params = request.query_params
    for name in params:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(
                f"query parameter {name!r} is given more than once; give it once", field=name
            )


def current_key(
    request: Request,
    services: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> ApiKey:
    """The caller's live key, charged one request of its rate limit (401 / 429).

    Failed authentications are limited per source address: past the limit the
    source is answered 429 without any key being looked up, so guessing keys is hopeless.
    """
    source = request.client.host if request.client is not None else "unknown"
    wait = services.auth_failures.wait(source)
    if wait > 0:
        services.counters.auth_limited += 1
        raise RateLimitedError(f"too many failed authentications from {source}", retry_after=wait)
    token = creds.credentials if creds is not None else header_key
    try:
        if not token:
            raise AuthenticationError(
                "send an API key: Authorization: Bearer <key> or X-API-Key", code="missing_key"
            )
        key = services.keys.lookup(services.store, token)
    except AuthenticationError:
        services.auth_failures.take(source)
        services.counters.auth_failures += 1
        raise
    wait = services.buckets.take(key.key_id)
    if wait > 0:
        services.counters.auth_limited += 1
        raise RateLimitedError(f"rate limit of key {key.key_id} reached", retry_after=wait)
    return key


def require(*roles: Role) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that lets only keys of ``roles`` through (403 otherwise)."""
    allowed = ", ".join(r.value for r in roles)

    async def check(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
        if key.role not in roles:
            raise ForbiddenError(
                f"a {key.role.value} key cannot do this; needs {allowed}", code="role_forbidden"
            )
        return key

    return check


UnitKey = Annotated[ApiKey, Depends(require(Role.UNIT))]
UnitOrOperatorKey = Annotated[ApiKey, Depends(require(Role.UNIT, Role.OPERATOR))]
ReaderKey = Annotated[ApiKey, Depends(require(Role.BACKEND, Role.OPERATOR))]
OperatorKey = Annotated[ApiKey, Depends(require(Role.OPERATOR))]
