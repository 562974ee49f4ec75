"""The web console served by the cloud under ``/console``: server-rendered pages, local assets.

:func:`install` gives an app the console's routes, its templates (Jinja2, every
value escaped), its stylesheet under ``/console/static`` and the secret that
signs sessions (kept in the database, shared by every replica).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from cloud.api.services import server_secret
from cloud.console.ota_routes import router as ota_router
from cloud.console.routes import router
from cloud.fleet_table import age

HERE = Path(__file__).parent


def utc_time(unix_s: float) -> str:
    """A unit's Unix time as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def templates() -> Jinja2Templates:
    """The console's templates, autoescaped."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined
    )
    env.filters["age"] = age
    env.filters["utc_time"] = utc_time
    return Jinja2Templates(env=env)


def install(app: FastAPI) -> None:
    """Serve the console from ``app``."""
    app.state.console_secret = server_secret(app.state.services.store, "console")
    app.state.console_templates = templates()
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
    app.include_router(ota_router)
