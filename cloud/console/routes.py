"""The console's pages and forms under ``/console``: sign-in, stores, store, fleet, unit.

Pages need a session (a GET without one is sent to the sign-in page, a POST
without one is refused 401); every form carries the session's CSRF token (403
without it). Operator actions refuse a session of a backend key (403). Pages
are rendered by Jinja2 with autoescaping, so whatever a unit sent shows as text.
Database work never runs on the event loop: sync routes run on worker threads,
and the async form handlers hand theirs to one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select

from cloud import fleet
from cloud.api.services import Services
from cloud.console import data
from cloud.console.session import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    SESSION_S,
    Session,
    csrf_ok,
    csrf_token,
    new_nonce,
    read_session,
    sign_session,
)
from cloud.errors import AuthenticationError, CloudError
from cloud.keys import Role
from cloud.schemas import StoreCreate
from cloud.store.tables import api_keys

router = APIRouter(prefix="/console", include_in_schema=False)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SIGN_IN_ROLES = (Role.OPERATOR.value, Role.BACKEND.value)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.console_secret
    return secret


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.console_templates
    return templates


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: Session | None = None,
    status: int = 200,
) -> HTMLResponse:
    """Page ``name`` with the session's CSRF token and the security headers."""
    ctx = {"session": session, **context}
    if session is not None:
        ctx["csrf"] = csrf_token(_secret(request), session.nonce)
    page = _templates(request).TemplateResponse(request, name, ctx, status_code=status)
    page.headers.update(HEADERS)
    return page


def current_session(request: Request) -> Session | None:
    """The request's session when its cookie is valid and its key is still live."""
    session = read_session(_secret(request), request.cookies.get(SESSION_COOKIE), now=time.time())
    if session is None:
        return None
    with _services(request).store.engine.connect() as conn:
        revoked = conn.execute(
            select(api_keys.c.revoked_at).where(api_keys.c.key_id == session.key_id)
        ).first()
    return session if revoked is not None and revoked[0] is None else None


def _to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/signin?next={quote(target)}", status_code=303)


def _error(request: Request, session: Session | None, status: int, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": status, "message": message},
        session=session,
        status=status,
    )


async def _form(request: Request, session: Session | None) -> tuple[dict[str, str], bool]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    nonce = session.nonce if session else request.cookies.get(PRESESSION_COOKIE)
    return values, csrf_ok(_secret(request), nonce, values.get("csrf"))


def _safe_next(target: str | None) -> str:
    if (
        target
        and target.startswith("/console/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/console/"


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a pre-session cookie carries its CSRF nonce)."""
    nonce = request.cookies.get(PRESESSION_COOKIE) or new_nonce()
    page = render(
        request,
        "signin.html",
        {"csrf": csrf_token(_secret(request), nonce), "next": _safe_next(next), "problem": None},
    )
    page.set_cookie(
        PRESESSION_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        path="/console",
        secure=request.url.scheme == "https",
    )
    return page


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    """Sign in with an operator or backend key: a session cookie, HttpOnly, SameSite=Strict."""
    services = _services(request)
    values, csrf = await _form(request, None)
    nonce = request.cookies.get(PRESESSION_COOKIE) or ""
    target = _safe_next(values.get("next"))

    def again(status: int, problem: str) -> HTMLResponse:
        ctx = {"csrf": csrf_token(_secret(request), nonce), "next": target, "problem": problem}
        return render(request, "signin.html", ctx, status=status)

    if not csrf:
        return _error(
            request, None, 403, "The form is stale or forged: open the sign-in page again."
        )
    source = request.client.host if request.client is not None else "unknown"
    if services.auth_failures.wait(source) > 0:
        services.counters.auth_limited += 1
        return again(429, "Too many failed sign-ins from here; wait a minute.")
    try:  # off the event loop: a lookup may wait for a connection
        key = await run_in_threadpool(
            services.keys.lookup, services.store, values.get("key", "").strip()
        )
    except AuthenticationError:
        services.auth_failures.take(source)
        services.counters.auth_failures += 1
        return again(401, "That key is not accepted.")
    if key.role.value not in SIGN_IN_ROLES:
        return again(403, "Unit keys cannot sign in to the console.")
    session = Session(key.key_id, key.role.value, new_nonce(), time.time() + SESSION_S)
    done = RedirectResponse(target, status_code=303)
    done.set_cookie(
        SESSION_COOKIE,
        sign_session(_secret(request), session),
        max_age=SESSION_S,
        httponly=True,
        samesite="strict",
        path="/console",
        secure=request.url.scheme == "https",
    )
    done.delete_cookie(PRESESSION_COOKIE, path="/console")
    return done


@router.post("/signout")
async def signout(request: Request) -> Response:
    """Sign out (the form's CSRF token needed, so no other site can sign anyone out)."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _error(request, None, 401, "You are not signed in.")
    _, csrf = await _form(request, session)
    if not csrf:
        return _error(request, session, 403, "The form is stale or forged.")
    done = RedirectResponse("/console/signin", status_code=303)
    done.delete_cookie(SESSION_COOKIE, path="/console")
    return done


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """Stores, with how many units each has."""
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    with _services(request).store.engine.connect() as conn:
        stores = fleet.list_stores(conn)
        units = fleet.list_devices(conn, None)
    counts: dict[str, int] = {}
    for u in units:
        counts[u.store_id] = counts.get(u.store_id, 0) + 1
    return render(request, "home.html", {"stores": stores, "counts": counts}, session=session)


def _add_store(services: Services, body: StoreCreate) -> None:
    with services.store.writing() as conn:
        fleet.add_store(conn, body)


@router.post("/stores", response_class=HTMLResponse)
async def add_store(request: Request) -> Response:
    """Register a store (operators only)."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _error(request, None, 401, "Sign in first.")
    values, csrf = await _form(request, session)
    if not csrf:
        return _error(request, session, 403, "The form is stale or forged.")
    if session.role != Role.OPERATOR.value:
        return _error(request, session, 403, "Only an operator key can register a store.")
    try:
        body = StoreCreate(store_id=values.get("store_id", ""), name=values.get("name", ""))
    except ValidationError:
        return _error(request, session, 422, "A store id is 1–64 letters, digits, '.', '_' or '-'.")
    try:
        await run_in_threadpool(_add_store, _services(request), body)
    except CloudError as err:
        return _error(request, session, err.status, err.message)
    return RedirectResponse("/console/", status_code=303)


@router.get("/stores/{store_id}", response_class=HTMLResponse)
def store(
    request: Request, store_id: str, low: int = data.LOW_STOCK, top: int = data.DRAWN_SKUS
) -> Response:
    """Stock now, interest per hour, conversion, and stock over the day of one store.

    ``top``: how many SKUs (those with most interest today) the charts draw, 1–1,000.
    """
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    try:
        with _services(request).store.engine.connect() as conn:
            page = data.store_page(
                conn, store_id, now=datetime.now(UTC), low=max(0, low), top=min(max(1, top), 1000)
            )
    except CloudError as err:
        return _error(request, session, err.status, err.message)
    return render(request, "store.html", {"page": page, "low": low}, session=session)


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    store: str | None = None,
    state: str | None = None,
    sort: str = "store",
    page: int = 1,
) -> Response:
    """Units by store with their state, lag and alarms; filter by store and state, sort;
    ``FLEET_PAGE`` units a page, with the counts of all of them."""
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    now = datetime.now(UTC)
    with _services(request).store.engine.connect() as conn:
        stores = [s.store_id for s in fleet.list_stores(conn)]
        if store and store not in stores:
            return _error(request, session, 404, f"No store {store!r}.")
        rows = data.fleet_rows(conn, store=store or None, state=state or None, sort=sort, now=now)
    pages = max(1, -(-len(rows) // data.FLEET_PAGE))
    page = min(max(1, page), pages)
    first = (page - 1) * data.FLEET_PAGE
    query = {k: v for k, v in (("store", store), ("state", state), ("sort", sort)) if v}
    ctx = {
        "now": now,
        "rows": rows[first : first + data.FLEET_PAGE],
        "summary": data.fleet_summary(rows),
        "page": page,
        "pages": pages,
        "first": first,
        "total": len(rows),
        "query": query,
        "stores": stores,
        "store": store or "",
        "state": state or "",
        "sort": sort if sort in data.SORTS else "store",
        "sorts": list(data.SORTS),
    }
    return render(request, "fleet.html", ctx, session=session)


@router.get("/units/{device_id}", response_class=HTMLResponse)
def unit(request: Request, device_id: str) -> Response:
    """One unit: its state, versions, outbox, health over the day, alarm history, latest events."""
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    try:
        with _services(request).store.engine.connect() as conn:
            page = data.unit_page(conn, device_id, now=datetime.now(UTC))
    except CloudError as err:
        return _error(request, session, err.status, err.message)
    ctx = {"row": page.row, "events": page.events, "page": page, "now": datetime.now(UTC)}
    return render(request, "unit.html", ctx, session=session)
