"""The console in a real headless Chromium: sign in, pages, escaping, CSRF, roles; screenshots.

Screenshots go to the test's tmp dir; with ``SHELFSENSE_CONSOLE_SHOTS=docs/console`` they
are also written there (the README shows those).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cloud.keys import Role
from tests.cloud.console_support import XSS_SKU, stock_batch, stocked_store
from tests.cloud.support import Live, event, make_key, register_unit
from tests.support.browser import browser_page

SHOTS_ENV = "SHELFSENSE_CONSOLE_SHOTS"


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the tmp dir (and in ``$SHELFSENSE_CONSOLE_SHOTS`` if set)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    where = os.environ.get(SHOTS_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(where) / path.name)
    return path


def sign_in(page: Any, live: Live, token: str) -> None:
    page.goto(f"{live.url}/console/")
    page.wait_for_selector("#key")
    page.fill("#key", token)
    page.click("#signin")
    page.wait_for_selector("#stores")


def post(live: Live, token: str, body: dict[str, Any]) -> None:
    with live.client(token) as client:
        r = client.post("/v1/ingest/events", json=body)
        assert r.status_code == 200, r.text


def test_console_pages_in_a_real_browser(live: Live, tmp_path: Path) -> None:
    unit = stocked_store(live.store)
    register_unit(live.store, "unit-2", "store-1", "bay-2")
    changes = [(0, "SKU-1", 12), (1, XSS_SKU, 6), (0, "SKU-1", 11), (1, XSS_SKU, 5)]
    changes += [(0, "SKU-1", 10), (1, XSS_SKU, 2)]
    for seq, (slot, sku, stock) in enumerate(changes, start=1):  # spread over the last hours
        ago = (len(changes) - seq) * 2400 + 60
        post(live, unit, stock_batch("unit-1", seq, slot, sku, stock, ago_s=ago))
    interest = [
        event("unit-1", 10 + i, kind="interest", label=label, slot=0, sku="SKU-1", units=None)
        for i, label in enumerate(["touch", "touch", "take", "browse"])
    ]
    post(live, unit, {"device_id": "unit-1", "events": interest})
    dialogs: list[str] = []
    with browser_page(live.url) as (page, visit):
        p: Any = page
        p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        p.set_viewport_size({"width": 1200, "height": 900})
        p.goto(f"{live.url}/console/fleet")
        p.wait_for_selector("#key")  # sent to sign in first
        shot(p, tmp_path, "signin")
        p.fill("#key", make_key(live.store, Role.OPERATOR))
        p.click("#signin")
        p.wait_for_selector("#units")  # back where it was going
        assert "unit-1" in p.inner_text("#units") and "unit-2" in p.inner_text("#units")
        shot(p, tmp_path, "fleet")

        p.goto(f"{live.url}/console/stores/store-1")
        p.wait_for_selector("#stock")
        stock = p.inner_text("#stock")
        assert XSS_SKU in stock  # shown as text, never run
        assert "SKU-1\t10" in stock
        assert p.locator("#stock-chart polyline").count() == 2
        assert "take" not in p.inner_text("#interest")  # counts in cells, not labels
        shot(p, tmp_path, "store")

        post(live, unit, stock_batch("unit-1", 20, 0, "SKU-1", 0))  # a change while it is open
        p.reload()
        p.wait_for_selector("#stock .flag.out")
        assert "SKU-1\t0\tout" in p.inner_text("#stock")

        p.goto(f"{live.url}/console/units/unit-1")
        p.wait_for_selector("#events")
        assert XSS_SKU in p.inner_text("#events")
        shot(p, tmp_path, "unit")
        assert p.locator("script").count() == 0
    assert dialogs == []
    assert visit.refused == [], f"the console asked outside the service: {visit.refused}"


def test_a_form_without_its_csrf_token_is_refused_in_the_browser(live: Live) -> None:
    with browser_page(live.url) as (page, _visit):
        p: Any = page
        sign_in(p, live, make_key(live.store, Role.OPERATOR))
        p.fill("#add-store input[name=store_id]", "store-forged")
        p.eval_on_selector("#add-store input[name=csrf]", "n => n.remove()")
        with p.expect_response(lambda r: r.url.endswith("/console/stores")) as answer:
            p.click("#add-store button")
        assert answer.value.status == 403
        p.goto(f"{live.url}/console/")
        assert "store-forged" not in p.inner_text("#stores")
        p.fill("#add-store input[name=store_id]", "store-real")
        p.click("#add-store button")
        p.wait_for_selector("text=store-real")


def test_a_backend_key_cannot_register_a_store_from_the_browser(live: Live) -> None:
    with browser_page(live.url) as (page, _visit):
        p: Any = page
        sign_in(p, live, make_key(live.store, Role.BACKEND))
        assert p.locator("#add-store").count() == 0
        csrf = p.get_attribute("header input[name=csrf]", "value")
        status = p.evaluate(
            """csrf => fetch('/console/stores', {method: 'POST',
                 body: new URLSearchParams({store_id: 'store-b', csrf})}).then(r => r.status)""",
            csrf,
        )
        assert status == 403
        p.reload()
        assert "store-b" not in p.inner_text("#stores")


def _a_day_of_health(live: Live, device_id: str) -> None:
    """Reports every 30 min over the last 10 h: an outbox that grew in an outage, a link alarm."""
    from datetime import UTC, datetime, timedelta

    from cloud import fleet_state
    from models.wire import HealthReport

    now = datetime.now(UTC)
    with live.store.writer.begin() as conn:
        for i in range(20, 0, -1):
            at = now - timedelta(minutes=30 * i)
            depth = 0 if not 6 <= i <= 11 else 140 * (12 - i)
            body: dict[str, Any] = {"at": at.timestamp(), "buffer_depth": depth}
            if 14 <= i <= 16:
                since = (now - timedelta(minutes=30 * 16)).timestamp()
                body["alarms"] = {"loadcell_link_down": {"since": since, "detail": "silent"}}
                body["components"] = {"loadcell_link": {"ok": False, "detail": "silent"}}
            report = HealthReport.model_validate(body)
            fleet_state.record_health(conn, device_id, report, at)


def test_a_unit_goes_online_alarms_and_goes_offline_in_the_browser(
    mosquitto, tmp_path: Path
) -> None:
    """A unit on the broker: online within seconds, an alarm raised and cleared, its last will."""
    import json
    import socket
    import time

    from cloud.settings import build_settings
    from edge.health import Health, health_report
    from edge.sync.identity import Identity
    from edge.sync.mqtt import MqttTransport
    from tests.cloud.support import serve
    from tests.support.waiting import wait_until

    settings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        rate_per_s=0,
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
    )
    with serve(settings, mqtt=True) as live, browser_page(live.url) as (page, visit):
        p: Any = page
        p.set_viewport_size({"width": 1400, "height": 900})
        register_unit(live.store, "unit-1", "store-1", "bay-1")
        register_unit(live.store, "unit-2", "store-1", "bay-2")
        _a_day_of_health(live, "unit-1")
        sign_in(p, live, make_key(live.store, Role.OPERATOR))

        def shows(path: str, selector: str, text: str) -> bool:
            p.goto(f"{live.url}{path}")
            return text in p.inner_text(selector)

        unit = MqttTransport(mosquitto.host, mosquitto.port, Identity(device_id="unit-1"))
        wait_until(lambda: shows("/console/fleet", "#units", "online"), timeout=10)
        health = Health()
        health.set("model_version", 7)
        health.set("decided_by", "model")
        health.set("buffer_depth", 42)
        health.set("oldest_unsynced", time.time() - 300)
        health.set("last_sync", time.time() - 290)
        health.component("camera", False, "no frame for 30 s")
        health.component("loadcell_link", True, "up")
        health.alarm("camera_down", "<script>alert(1)</script>")
        unit.publish("health", json.dumps(health_report(health.snapshot())))
        wait_until(lambda: shows("/console/fleet", "#units", "camera_down"), timeout=10)
        assert "v7" in p.inner_text("#units")
        shot(p, tmp_path, "fleet-live")

        health.clear("camera_down")
        health.component("camera", True, "up")
        unit.publish("health", json.dumps(health_report(health.snapshot())))
        wait_until(lambda: shows("/console/units/unit-1", "#alarms", "camera_down"), timeout=10)
        wait_until(lambda: shows("/console/units/unit-1", "#unit", "none"), timeout=10)
        history = p.inner_text("#alarms")
        assert "<script>alert(1)</script>" in history and "raised now" not in history
        assert p.locator("#outbox-chart polyline").count() == 1
        assert p.locator("#trouble-chart polyline").count() == 2
        shot(p, tmp_path, "unit-live")

        unit.client.loop_stop()  # the unit dies: its socket closes without a DISCONNECT
        sock = unit.client.socket()
        assert isinstance(sock, socket.socket)
        sock.close()
        wait_until(lambda: shows("/console/units/unit-1", "h1", "offline"), timeout=20)
        assert p.locator("script").count() == 0
    assert visit.refused == [], f"the console asked outside the service: {visit.refused}"


def test_models_and_rollouts_pages_and_the_rollout_buttons_in_a_browser(
    live: Live, tmp_path: Path
) -> None:
    from cloud import rollouts
    from cloud.ota_schemas import RolloutCreate
    from tests.cloud.console_support import published_model
    from tests.cloud.support import register_fleet

    register_fleet(live.store, {f"unit-{i}": ("store-1", f"bay-{i}") for i in range(6)})
    for version in (1, 2):
        published_model(live.store, version)
    with live.store.writer.begin() as conn:
        body = RolloutCreate.model_validate({"model_version": 2, "phases": "canary:2,50%,100%"})
        rollouts.create_rollout(conn, body)
    rollouts.tick(live.store)
    with browser_page(live.url) as (page, visit):
        p: Any = page
        p.set_viewport_size({"width": 1200, "height": 900})
        sign_in(p, live, make_key(live.store, Role.OPERATOR))
        p.click("header >> text=Models")
        p.wait_for_selector("#model-v2 table.confusion")
        assert "93.2 % on the diagonal" in p.inner_text("#model-v2")
        shot(p, tmp_path, "models")
        p.click("header >> text=Rollouts")
        p.wait_for_selector("#rollout-1")
        assert "running" in p.inner_text("#rollout-1 h2")
        shot(p, tmp_path, "rollouts")
        p.click("#rollout-1 button.pause")
        p.wait_for_selector("#rollout-1 .rstatus.paused")
        p.click("#rollout-1 button.halt")
        p.wait_for_selector("#rollout-1 .rstatus.halted")
        assert p.locator("#rollout-1 button").count() == 0  # a halted rollout has no buttons
    assert visit.refused == [], f"the console asked outside the service: {visit.refused}"
