"""``/docs``: Swagger UI from files shipped in the package, so it renders with no internet.

The assets are swagger-ui-dist (see ``static/swagger-ui/VERSION``), served under
``/static/swagger-ui/``; nothing on the page is fetched from outside the service.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = "/static/swagger-ui"


def install(app: FastAPI) -> None:
    """Serve the vendored assets and the ``/docs`` page that uses them."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
