"""``GET /metrics``: the service in the Prometheus text format (an operator key needed).

Each app has its own registry. A middleware times every request by route
template (``/v1/stock/skus``, not the URL a caller sent) and counts answers by
status and, for error answers, by their JSON ``code``. What other parts already
count (HTTP ingest in :class:`cloud.api.services.IngestCounts`, the MQTT worker's
counters, the pools' state) is read at scrape time, and so is per-device progress:
one indexed read of ``device_progress`` joined to ``devices``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from cloud import fleet_views
from cloud.api.deps import OperatorKey
from cloud.api.errors import responses
from cloud.store.tables import device_progress, devices

PREFIX = "shelfsense"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
INGEST_ROUTE_PREFIX = "/v1/ingest/"
MAX_ERROR_BODY = 4096

router = APIRouter(tags=["metrics"])


class ErrorCodes:
    """Error answers by route template and code (thread-safe tally)."""

    def __init__(self) -> None:
        self._tally: Tally[tuple[str, str]] = Tally()
        self._lock = threading.Lock()

    def add(self, route: str, code: str) -> None:
        with self._lock:
            self._tally[(route, code)] += 1

    def items(self) -> list[tuple[tuple[str, str], int]]:
        with self._lock:
            return list(self._tally.items())


def _code_of(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "unknown"
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and len(code) <= 64 else "unknown"


class MetricsMiddleware:
    """Times each HTTP request and counts it by route template and status (pure ASGI)."""

    def __init__(self, app: Any, *, latency: Histogram, requests: Counter, codes: ErrorCodes):
        self.app, self.latency, self.requests, self.codes = app, latency, requests, codes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        error_body = bytearray()

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif (
                message["type"] == "http.response.body"
                and status >= 400
                and len(error_body) < MAX_ERROR_BODY
            ):
                error_body.extend(message.get("body", b"")[:MAX_ERROR_BODY])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.latency.labels(method, route).observe(time.perf_counter() - started)
            self.requests.labels(method, route, str(status)).inc()
            if status >= 400:
                self.codes.add(route, _code_of(bytes(error_body)))


def _pool_state(name: str, engine: Engine) -> Iterator[tuple[str, str, float]]:
    pool: Any = engine.pool
    for state, attr in (
        ("size", "size"),
        ("checked_out", "checkedout"),
        ("checked_in", "checkedin"),
        ("overflow", "overflow"),
    ):
        fn = getattr(pool, attr, None)
        if callable(fn):
            yield name, state, float(fn())


def _gates(gates: Any) -> Iterator[Metric]:
    """Database slots of API requests (:mod:`cloud.api.db_gate`): in use, waiting, refused."""
    state = GaugeMetricFamily(
        f"{PREFIX}_db_gate_requests",
        "API requests holding a database slot (active) or waiting for one (queued), by gate.",
        labels=["gate", "state"],
    )
    slots = GaugeMetricFamily(
        f"{PREFIX}_db_gate_slots",
        "Database slots per gate (its pool's connections).",
        labels=["gate"],
    )
    refused = CounterMetricFamily(
        f"{PREFIX}_db_gate_refused",
        "API requests answered 503 overloaded by gate: on arrival (queue full or its wait too "
        "long) or expired (waited read_max_wait_s).",
        labels=["gate", "reason"],
    )
    for name, gate in (("read", gates.read), ("write", gates.write)):
        state.add_metric([name, "active"], gate.active)
        state.add_metric([name, "queued"], gate.queued)
        slots.add_metric([name], gate.limit)
        refused.add_metric([name, "on_arrival"], gate.counters.refused)
        refused.add_metric([name, "expired"], gate.counters.expired)
    yield state
    yield slots
    yield refused


class ServiceCollector(Collector):
    """What is read at scrape time: ingest counts, refusals, pools, database slots, MQTT worker,
    device progress."""

    def __init__(self, app: FastAPI, codes: ErrorCodes, *, clock: Any = None) -> None:
        self.app, self.codes = app, codes
        self.clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterable[Metric]:
        services = self.app.state.services
        worker = getattr(self.app.state, "ingest_worker", None)
        ingested = CounterMetricFamily(
            f"{PREFIX}_ingest_events",
            "Events accepted at ingest, by transport and outcome (stored or duplicate).",
            labels=["transport", "outcome"],
        )
        counts = services.ingest_counts
        ingested.add_metric(["http", "stored"], counts.stored)
        ingested.add_metric(["http", "duplicate"], counts.duplicates)
        refused = CounterMetricFamily(
            f"{PREFIX}_ingest_refused",
            "Ingest refusals by transport and error code (MQTT ones are counted under 'any').",
            labels=["transport", "code"],
        )
        errors = CounterMetricFamily(
            f"{PREFIX}_http_errors",
            "Error answers by route template and error code.",
            labels=["route", "code"],
        )
        for (route, code), n in self.codes.items():
            errors.add_metric([route, code], n)
            if route.startswith(INGEST_ROUTE_PREFIX):
                refused.add_metric(["http", code], n)
        yield from self._worker(worker, ingested, refused)
        yield ingested
        yield refused
        yield errors
        pool = GaugeMetricFamily(
            f"{PREFIX}_db_pool_connections",
            "Database pool connections by engine (read, write) and state.",
            labels=["engine", "state"],
        )
        store = services.store
        engines = [("read", store.engine)]
        if store.writer is not store.engine:
            engines.append(("write", store.writer))
        for name, engine in engines:
            for eng, state, value in _pool_state(name, engine):
                pool.add_metric([eng, state], value)
        yield pool
        security = CounterMetricFamily(
            f"{PREFIX}_auth_refused",
            "Requests refused for a bad key, or limited after failing too often.",
            labels=["reason"],
        )
        security.add_metric(["bad_key"], services.counters.auth_failures)
        security.add_metric(["limited"], services.counters.auth_limited)
        yield security
        yield from _gates(services.gates)
        yield from self._fleet_worker(getattr(self.app.state, "fleet_worker", None))
        yield from self._devices(store.engine)

    def _fleet_worker(self, worker: Any) -> Iterator[Metric]:
        if worker is None:
            return
        handled = CounterMetricFamily(
            f"{PREFIX}_fleet_state_messages",
            "Units' status, health and reported messages, by outcome (stored, refused, dropped).",
            labels=["outcome"],
        )
        handled.add_metric(["stored"], worker.stored)
        handled.add_metric(["refused"], worker.refused)
        handled.add_metric(["dropped"], worker.dropped)
        yield handled

    def _worker(self, worker: Any, ingested: Any, refused: Any) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_mqtt_worker_up",
            "1 when this process's MQTT ingest worker is connected and storing; 0 when down.",
        )
        if worker is None:
            return
        ingested.add_metric(["mqtt", "stored"], worker.stored)
        ingested.add_metric(["mqtt", "duplicate"], worker.duplicates)
        refused.add_metric(["mqtt", "any"], worker.refused)
        up.add_metric([], 1.0 if worker.down_reason() is None else 0.0)
        yield up
        restarts = CounterMetricFamily(
            f"{PREFIX}_mqtt_worker_restarts", "Times the storing thread was restarted."
        )
        restarts.add_metric([], worker.restarts)
        yield restarts
        failed = CounterMetricFamily(
            f"{PREFIX}_mqtt_worker_errors", "Batches that raised past every guard."
        )
        failed.add_metric([], worker.errors)
        yield failed

    def _devices(self, engine: Engine) -> Iterator[Metric]:
        db_up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the database answers a read.")
        seq = GaugeMetricFamily(
            f"{PREFIX}_device_highest_contiguous_seq",
            "Highest seq stored with every earlier one, per device.",
            labels=["device", "store"],
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_device_last_seen_age_seconds",
            "Seconds since the device's last stored batch (its lag).",
            labels=["device", "store"],
        )
        units = GaugeMetricFamily(
            f"{PREFIX}_fleet_units",
            "Units by state: online, offline, unknown (never heard).",
            labels=["state"],
        )
        alarms = GaugeMetricFamily(
            f"{PREFIX}_fleet_alarms_raised",
            "Alarms raised now across the fleet, by alarm.",
            labels=["alarm"],
        )
        d, p = devices.c, device_progress.c
        stmt = select(d.device_id, d.store_id, p.highest_contiguous, p.last_seen_at).join(
            device_progress, p.device_id == d.device_id
        )
        now = self.clock()
        try:
            with engine.connect() as conn:
                rows = conn.execute(stmt).all()
                states = fleet_views.state_counts(conn, now)
                raised = fleet_views.alarm_counts(conn)
        except SQLAlchemyError:
            db_up.add_metric([], 0.0)
            yield db_up
            return
        db_up.add_metric([], 1.0)
        for state, n in states.items():
            units.add_metric([state], n)
        for name, n in raised.items():
            alarms.add_metric([name], n)
        yield units
        yield alarms
        for r in rows:
            seen = r.last_seen_at
            seen = seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen
            seq.add_metric([r.device_id, r.store_id], float(r.highest_contiguous))
            age.add_metric([r.device_id, r.store_id], max(0.0, (now - seen).total_seconds()))
        yield db_up
        yield seq
        yield age


def install(app: FastAPI) -> None:
    """Give ``app`` its registry, the timing middleware and ``GET /metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    latency = Histogram(
        f"{PREFIX}_http_request_duration_seconds",
        "Time to answer a request, by method and route template.",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    requests = Counter(
        f"{PREFIX}_http_requests",
        "Requests answered, by method, route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    codes = ErrorCodes()
    registry.register(ServiceCollector(app, codes))
    app.state.metrics_registry = registry
    app.add_middleware(MetricsMiddleware, latency=latency, requests=requests, codes=codes)
    app.include_router(router)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **responses(401, 403, 429),
    },
)
def metrics(request: Request, _key: OperatorKey) -> Response:
    """Every metric of this process in the Prometheus text format (operator key)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
