"""``/docs`` renders the API in a real browser with nothing fetched from outside the service."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cloud.support import Live
from tests.support.browser import browser_page


def test_docs_render_offline_in_a_real_browser(live: Live) -> None:
    with browser_page(live.url) as (page, visit):
        p: Any = page
        p.goto(f"{live.url}/docs")
        p.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "shelfsense cloud" in p.inner_text(".swagger-ui .info .title")
        p.wait_for_selector('.opblock-summary-path[data-path="/v1/stock/skus"]', timeout=30_000)
        paths = p.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)"
        )
    assert "/v1/ingest/events" in paths
    assert visit.refused == [], f"/docs asked outside the service: {visit.refused}"
    assert any(url.endswith("/static/swagger-ui/swagger-ui-bundle.js") for url in visit.requested)


def test_docs_assets_are_served_by_the_service(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text
        js = client.get("/static/swagger-ui/swagger-ui-bundle.js")
        assert js.status_code == 200
        assert len(js.content) > 100_000
        assert client.get("/redoc").status_code == 404
        assert client.get("/static/../app.py").status_code == 404
