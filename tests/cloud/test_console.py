"""The console over plain HTTP: sessions, CSRF, roles, escaping, what its pages show."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloud.keys import Role, revoke_key
from cloud.store.tables import api_keys, stores
from tests.cloud.console_support import XSS_SKU, csrf_of, signed_in, stock_batch, stocked_store
from tests.cloud.support import Live, make_key, register_unit


def store_ids(live: Live) -> set[str]:
    with live.store.engine.connect() as conn:
        return set(conn.execute(select(stores.c.store_id)).scalars())


def test_pages_without_a_session_go_to_sign_in_and_forms_are_refused(live: Live) -> None:
    with live.client() as client:
        for path in ("/console/", "/console/fleet", "/console/stores/store-1", "/console/units/u"):
            r = client.get(path)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/console/signin?next=")
        r = client.post("/console/stores", data={"store_id": "store-x", "csrf": "x"})
        assert r.status_code == 401
        client.cookies.set("ss_console", "forged.value", path="/console")
        assert client.get("/console/").status_code == 303
    assert "store-x" not in store_ids(live)


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(live: Live) -> None:
    token = make_key(live.store, Role.OPERATOR)
    client = live.client()
    form = client.get("/console/signin")
    assert form.status_code == 200
    assert "default-src 'self'" in form.headers["content-security-policy"]
    r = client.post("/console/signin", data={"key": token, "csrf": csrf_of(form.text)})
    assert r.status_code == 303
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("ss_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    home = client.get("/console/")
    assert home.status_code == 200 and "Register a store" in home.text
    assert client.post("/console/signout", data={}).status_code == 403  # no CSRF token
    out = client.post("/console/signout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303
    assert client.get("/console/").status_code == 303
    client.close()


def test_bad_keys_and_forged_sign_in_forms_are_refused(live: Live) -> None:
    unit = register_unit(live.store, "unit-9")
    with live.client() as client:
        form = client.get("/console/signin")
        csrf = csrf_of(form.text)
        assert (
            client.post("/console/signin", data={"key": "ssk_nope", "csrf": csrf}).status_code
            == 401
        )
        assert client.post("/console/signin", data={"key": unit, "csrf": csrf}).status_code == 403
        operator = make_key(live.store, Role.OPERATOR)
        forged = client.post("/console/signin", data={"key": operator, "csrf": "forged"})
        assert forged.status_code == 403
        assert "ss_console=" not in forged.headers.get("set-cookie", "")


def test_csrf_less_form_post_is_refused_and_stores_nothing(live: Live) -> None:
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        r = client.post("/console/stores", data={"store_id": "store-x"})
        assert r.status_code == 403
        r = client.post("/console/stores", data={"store_id": "store-x", "csrf": "0" * 43})
        assert r.status_code == 403
        assert "store-x" not in store_ids(live)
        csrf = csrf_of(client.get("/console/").text)
        ok = client.post("/console/stores", data={"store_id": "store-x", "csrf": csrf})
        assert ok.status_code == 303
        assert "store-x" in store_ids(live)
        bad = client.post("/console/stores", data={"store_id": "no spaces", "csrf": csrf})
        assert bad.status_code == 422
        again = client.post("/console/stores", data={"store_id": "store-x", "csrf": csrf})
        assert again.status_code == 409


def test_a_backend_key_cannot_do_an_operator_action(live: Live) -> None:
    with signed_in(live, make_key(live.store, Role.BACKEND)) as client:
        home = client.get("/console/")
        assert home.status_code == 200 and "Register a store" not in home.text
        r = client.post("/console/stores", data={"store_id": "store-b", "csrf": csrf_of(home.text)})
        assert r.status_code == 403
    assert "store-b" not in store_ids(live)


def test_a_revoked_key_ends_its_sessions(live: Live) -> None:
    token = make_key(live.store, Role.BACKEND)
    with signed_in(live, token) as client:
        assert client.get("/console/").status_code == 200
        with live.store.writer.begin() as conn:
            key_id = conn.execute(
                select(api_keys.c.key_id).where(api_keys.c.role == "backend")
            ).scalar_one()
            revoke_key(conn, key_id)
        assert client.get("/console/").status_code == 303


def test_store_and_unit_pages_show_posted_stock_escaped(live: Live) -> None:
    unit = stocked_store(live.store)
    with live.client(unit) as client:
        for seq, (slot, sku, stock) in enumerate(
            [(0, "SKU-1", 9), (1, XSS_SKU, 2), (0, "SKU-1", 0)], start=1
        ):
            r = client.post("/v1/ingest/events", json=stock_batch("unit-1", seq, slot, sku, stock))
            assert r.status_code == 200, r.text
    with signed_in(live, make_key(live.store, Role.BACKEND)) as client:
        page = client.get("/console/stores/store-1")
        assert page.status_code == 200
        assert XSS_SKU not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert 'class="flag out">out<' in page.text and 'class="flag low">low<' in page.text
        assert page.text.count("<polyline") == 2  # a line per SKU
        one = client.get("/console/stores/store-1", params={"top": 1})
        assert one.text.count("<polyline") == 1  # only as many SKUs drawn as asked
        unit_page = client.get("/console/units/unit-1")
        assert unit_page.status_code == 200 and XSS_SKU not in unit_page.text
        fleet = client.get("/console/fleet", params={"sort": "lag", "store": "store-1"})
        assert fleet.status_code == 200 and "unit-1" in fleet.text
        assert client.get("/console/units/no-such-unit").status_code == 404
        assert client.get("/console/stores/no-such-store").status_code == 404


def test_fleet_and_unit_pages_read_the_stored_fleet_state(live: Live) -> None:
    """Online state, versions, outbox, parts down and alarms with their history, escaped."""
    from datetime import UTC, datetime, timedelta

    from cloud import fleet_state
    from models.wire import HealthReport

    tok_a = register_unit(live.store, "unit-a")
    register_unit(live.store, "unit-b")
    now = datetime.now(UTC)
    t = now.timestamp()
    raised = {"camera_down": {"since": t - 60, "detail": "<b>no frames</b>"}}
    with live.client(tok_a) as unit:
        for at, alarms in (
            (t - 30, {"disk_full": {"since": t - 90, "detail": "98 %"}}),
            (t, raised),
        ):
            body = {
                "at": at,
                "alarms": alarms,
                "components": {"camera": {"ok": False, "detail": "<i>x</i>"}},
                "model_version": 12,
                "buffer_depth": 340,
                "oldest_unsynced": t - 400,
                "agent_version": "0.1.0",
            }
            assert unit.put("/v1/devices/unit-a/health", json=body).status_code == 200
    with live.store.writer.begin() as conn:  # unit-b: last heard an hour ago (HTTP only)
        old = HealthReport(at=t - 3600)
        fleet_state.record_health(conn, "unit-b", old, now - timedelta(hours=1))
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        page = client.get("/console/fleet", params={"sort": "alarms"}).text
        assert 'class="state online">online' in page and 'class="state offline">offline' in page
        assert "camera_down" in page and "camera down" in page and "v12" in page
        assert ">340<" in page and "6m" in page  # outbox depth, oldest unsynced
        assert page.index("unit-a") < page.index("unit-b")
        offline = client.get("/console/fleet", params={"state": "offline"}).text
        assert "unit-b" in offline and "unit-a" not in offline
        assert client.get("/console/fleet", params={"store": "nowhere"}).status_code == 404
        unit_page = client.get("/console/units/unit-a").text
        assert "online" in unit_page and "<b>no frames" not in unit_page
        assert "&lt;b&gt;no frames&lt;/b&gt;" in unit_page and "&lt;i&gt;x&lt;/i&gt;" in unit_page
        assert 'id="outbox-chart"' in unit_page  # a sample stored with the first report
        history = unit_page[unit_page.index('id="alarms"') :]
        assert "disk_full" in history and "raised now" in history
    from cloud import fleet_views
    from cloud.console import data

    with live.store.engine.connect() as conn:  # the page's rows read lightly, as the API says
        rows = data.fleet_rows(conn, store=None, state=None, sort="unit", now=now)
        states = fleet_views.device_states(conn, now=now, calibration=False)
    assert [(r.device_id, r.state, r.down, r.alarms, r.buffer_depth, r.model_version) for r in rows] == [
        (d.device_id, d.state, [k for k, c in d.components.items() if not c.ok], d.alarms,
         d.buffer_depth, d.model_version)
        for d in states
    ]  # fmt: skip
    assert [r.device for r in rows] == states
    assert rows[0].down == ["camera"] and rows[1].state == "offline"


def test_fleet_page_lists_a_page_of_units_with_counts_of_all(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.console import data

    monkeypatch.setattr(data, "FLEET_PAGE", 2)
    for i in range(5):
        register_unit(live.store, f"unit-{i}")
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        first = client.get("/console/fleet", params={"sort": "unit"}).text
        assert "5 units:" in first and "5 never heard" in first and "Showing 1–2." in first
        assert "unit-0" in first and "unit-1" in first and "unit-2" not in first
        assert 'href="/console/fleet?sort=unit&amp;page=2" rel="next"' in first
        last = client.get("/console/fleet", params={"sort": "unit", "page": 99}).text
        assert "page 3 of 3" in last and "unit-4" in last and "unit-3" not in last
        assert 'rel="next"' not in last and 'rel="prev"' in last
