"""Build the FastAPI app: :func:`create_app` from settings, :func:`app_from_env` for uvicorn workers.

The app opens (and migrates) its store when built, keeps its collaborators in
``app.state.services`` and closes the store on shutdown. With ``mqtt=True`` and
a broker in the settings it also runs, for its lifetime, one MQTT ingest worker
(events) and one fleet state worker (the units' status, health and reported).
With a broker in the settings it publishes desired state retained to the units
through a :class:`cloud.desired_publish.DesiredPublisher` (one may be passed in;
``None`` turns publishing off). Ingest batches pass :mod:`cloud.admission` before
their body is read, every other request that may touch the database a slot of
:mod:`cloud.api.db_gate` before any of its work starts; with ``ingest_processes`` they are stored by processes of
their own (:mod:`cloud.ingest_procs`), started and stopped with the app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from cloud.admission import AdmissionMiddleware
from cloud.api import docs, errors, metrics
from cloud.api.db_gate import DbGateMiddleware
from cloud.api.deps import single_values
from cloud.api.routes import (
    claims,
    devices,
    events,
    health,
    ingest,
    interest,
    keys,
    labels,
    models,
    rollouts,
    stock,
    stores,
)
from cloud.api.services import Services
from cloud.console import install as install_console
from cloud.desired_publish import DesiredPublisher
from cloud.ota_ticker import RolloutTicker
from cloud.settings import CloudSettings, build_settings
from cloud.store import Store, open_store

log = logging.getLogger(__name__)
CONFIG_ENV = "SHELFSENSE_CLOUD_CONFIG"
FROM_SETTINGS: Any = object()  # default of ``desired_publisher``: built from the settings

DESCRIPTION = """\
The shelfsense cloud: units post their events here; the e-commerce backend reads
stock, interest and the event feed; operators run the fleet.

Every call but `/v1/health` needs an API key (`Authorization: Bearer ssk_…` or
`X-API-Key`). Errors are JSON `{code, message, field}` with a stable `code`.
"""


def create_app(
    settings: CloudSettings,
    *,
    store: Store | None = None,
    mqtt: bool = False,
    desired_publisher: DesiredPublisher | None = FROM_SETTINGS,
) -> FastAPI:
    """The app for ``settings`` (its store opened and migrated unless one is given).

    ``desired_publisher`` defaults to one for the settings' broker (None without
    ``mqtt_host``), started and stopped with the app; one passed in is the caller's to run.
    """
    opened = store or open_store(
        settings.database_url,
        pool_size=settings.db_pool_size,
        write_pool_size=settings.db_write_pool_size,
    )
    services = Services.build(settings, opened)
    owns_publisher = desired_publisher is FROM_SETTINGS
    publisher = DesiredPublisher.from_settings(settings) if owns_publisher else desired_publisher

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = None
        fleet_worker = None
        ticker = RolloutTicker(settings, opened, publisher=publisher)
        if owns_publisher and publisher is not None:
            publisher.start()
        if mqtt and settings.mqtt_host:
            from cloud.fleet_ingest import FleetStateWorker
            from cloud.mqtt_ingest import IngestWorker

            worker = IngestWorker.from_settings(settings, opened)
            worker.start()
            _app.state.ingest_worker = worker
            fleet_worker = FleetStateWorker.from_settings(settings, opened)
            fleet_worker.start()
            _app.state.fleet_worker = fleet_worker
        if services.ingest_pool is not None:
            pids = services.ingest_pool.start()
            log.info("ingest in %d processes (pids %s)", len(pids), ", ".join(map(str, pids)))
        ticker.start()
        try:
            yield
        finally:
            ticker.stop()
            if services.ingest_pool is not None:
                services.ingest_pool.stop()
            if fleet_worker is not None:
                fleet_worker.stop()
            if worker is not None:
                worker.stop()
            if owns_publisher and publisher is not None:
                publisher.stop()
            if store is None:
                opened.dispose()

    app = FastAPI(
        title="shelfsense cloud",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(single_values)],
    )
    app.state.services = services
    app.state.desired_publisher = publisher
    app.state.ingest_worker = None
    app.state.fleet_worker = None
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return ingest.add_wire_schemas(default_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    errors.install(app)
    docs.install(app)
    ingest_paths = frozenset({ingest.EVENTS_PATH})
    app.add_middleware(AdmissionMiddleware, admission=services.admission, paths=ingest_paths)
    # every other request that may touch the database waits for a slot on the event loop
    app.add_middleware(DbGateMiddleware, gates=services.gates, ingest_paths=ingest_paths)
    metrics.install(app)
    install_console(app)
    for router in (
        health.router,
        ingest.router,
        stock.router,
        interest.router,
        events.router,
        labels.sales_router,
        labels.corrections_router,
        labels.export_router,
        stores.router,
        devices.router,
        devices.alarms_router,
        keys.router,
        claims.router,
        models.router,
        models.tuf_router,
        rollouts.router,
        rollouts.device_router,
    ):
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """The app from the environment (``SHELFSENSE_CLOUD_*``, file in ``SHELFSENSE_CLOUD_CONFIG``)."""
    from cloud.heap import settle_for_serving

    app = create_app(build_settings(os.environ.get(CONFIG_ENV) or None))
    settle_for_serving()
    return app
