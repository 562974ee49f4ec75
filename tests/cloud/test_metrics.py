"""``/metrics`` scraped from a live app and parsed with the Prometheus text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from cloud.keys import Role
from tests.cloud.support import Live, batch, make_key, register_unit


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
