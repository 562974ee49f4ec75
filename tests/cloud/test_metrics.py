"""``/metrics`` scraped from a live app and parsed with the Prometheus text parser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cloud.keys import Role
from cloud.settings import build_settings
from edge.health import Health
from edge.metrics_file import render
from tests.cloud.support import Live, batch, event, make_key, register_unit, serve
from tests.support.mqtt_unit import MqttUnit
from tests.support.waiting import wait_until

DASHBOARD = Path(__file__).resolve().parents[2] / "cloud/deploy/grafana/shelfsense.json"


def scrape(live: Live, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with live.client(token) as client:
        r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_requests(live: Live) -> None:
    operator = make_key(live.store, Role.OPERATOR)
    unit = register_unit(live.store, "unit-1")
    before = scrape(live, operator)
    assert value(before, "shelfsense_database_up") == 1.0
    with live.client(unit) as client:
        assert (
            client.post("/v1/ingest/events", json=batch("unit-1", range(1, 4))).status_code == 200
        )
        assert client.post("/v1/ingest/events", json=batch("unit-1", [3])).status_code == 200
        wrong = client.post("/v1/ingest/events", json=batch("unit-1", [9], store="store-9"))
        assert wrong.status_code == 403
        assert client.get("/v1/stock/skus").status_code == 403
    after = scrape(live, operator)
    ingest = "/v1/ingest/events"
    assert value(after, "shelfsense_ingest_events_total", transport="http", outcome="stored") == 3
    assert (
        value(after, "shelfsense_ingest_events_total", transport="http", outcome="duplicate") == 1
    )
    assert (
        value(after, "shelfsense_ingest_refused_total", transport="http", code="wrong_store") == 1
    )
    assert (
        value(after, "shelfsense_http_errors_total", route="/v1/stock/skus", code="role_forbidden")
        == 1
    )
    assert (
        value(after, "shelfsense_http_requests_total", method="POST", route=ingest, status="200")
        == 2
    )
    count = "shelfsense_http_request_duration_seconds_count"
    assert value(after, count, method="POST", route=ingest) == 3
    assert value(after, count, method="GET", route="/metrics") >= 1
    assert (
        value(after, "shelfsense_device_highest_contiguous_seq", device="unit-1", store="store-1")
        == 3
    )
    assert (
        value(after, "shelfsense_device_last_seen_age_seconds", device="unit-1", store="store-1")
        >= 0
    )
    assert value(after, "shelfsense_db_pool_connections", engine="read", state="size") >= 1


def test_metrics_need_an_operator_key(live: Live) -> None:
    backend = make_key(live.store, Role.BACKEND)
    with live.client() as client:
        assert client.get("/metrics").status_code == 401
    with live.client(backend) as client:
        assert client.get("/metrics").status_code == 403


def test_unmatched_paths_share_one_label(live: Live) -> None:
    operator = make_key(live.store, Role.OPERATOR)
    with live.client(operator) as client:
        for i in range(3):
            assert client.get(f"/no/such/{i}").status_code == 404
    after = scrape(live, operator)
    assert value(after, "shelfsense_http_errors_total", route="unmatched", code="not_found") == 3
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(r and r.startswith("/no/such") for r in routes)


def test_mqtt_worker_metrics_and_the_grafana_dashboard(mosquitto: Any, tmp_path: Path) -> None:
    settings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        rate_per_s=0,
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
    )
    with serve(settings, mqtt=True) as live:
        operator = make_key(live.store, Role.OPERATOR)
        register_unit(live.store, "unit-5")
        unit = MqttUnit(mosquitto.host, mosquitto.port, "unit-5")
        try:

            def stored() -> bool:  # the worker subscribes once the app is up: publish again
                unit.publish(event("unit-5", 1))
                return unit.wait(lambda: unit.highest() == 1, timeout=0.5)

            wait_until(stored)
        finally:
            unit.close()
        with live.client() as client:  # a request timed before the scrape
            client.get("/v1/health")
        got = scrape(live, operator)
        cloud_names = {name for name, _ in got}
    assert value(got, "shelfsense_mqtt_worker_up") == 1
    assert value(got, "shelfsense_fleet_units", state="online") == 1  # heard from just now
    assert value(got, "shelfsense_fleet_units", state="unknown") == 0
    assert value(got, "shelfsense_fleet_state_messages_total", outcome="refused") == 0
    assert value(got, "shelfsense_ingest_events_total", transport="mqtt", outcome="stored") == 1
    health = Health(clock=lambda: 10.0)
    health.set("buffer_depth", 0)
    health.set("oldest_unsynced", 1.0)
    health.observe("inference_seconds", 0.01)
    health.count("decisions.stock.rules")
    health.alarm("camera_down")
    unit_names = {
        s.name
        for f in text_string_to_metric_families(render(health.snapshot(), device_id="u", now=10.0))
        for s in f.samples
    }
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        named = set(re.findall(r"\bshelfsense_[a-z_]+\b", expr))
        assert named, expr
        assert named <= cloud_names | unit_names, f"{expr}: {named - cloud_names - unit_names}"
