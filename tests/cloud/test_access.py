"""Keys and roles over HTTP: 401 vs 403, a unit only for itself, backend read-only, limits."""

from __future__ import annotations

from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import Live, batch, count_events, make_key, register_unit, serve

URL = "/v1/ingest/events"


def test_no_key_bad_key_revoked_key_are_401(live: Live) -> None:
    r = live.client().get("/v1/stock")
    assert (r.status_code, r.json()["code"]) == (401, "missing_key")
    assert r.headers["www-authenticate"] == "Bearer"
    r = live.client("ssk_abc_nope").get("/v1/stock")
    assert (r.status_code, r.json()["code"]) == (401, "invalid_key")
    r = live.client("garbage").get("/v1/stock")
    assert r.status_code == 401
    op = make_key(live.store, Role.OPERATOR)
    be = make_key(live.store, Role.BACKEND)
    assert live.client(be).get("/v1/stock").status_code == 200
    key_id = be.split("_")[1]
    assert live.client(op).delete(f"/v1/keys/{key_id}").status_code == 200
    r = live.client(be).get("/v1/stock")
    assert (r.status_code, r.json()["code"]) == (401, "revoked_key")


def test_unit_key_cannot_post_another_units_events(live: Live) -> None:
    register_unit(live.store, "unit-2")
    c = live.client(register_unit(live.store, "unit-1"))
    r = c.post(URL, json=batch("unit-2", [1]))
    assert (r.status_code, r.json()["code"]) == (403, "device_mismatch")
    assert count_events(live.store) == 0
    assert c.get("/v1/devices/unit-1/desired").status_code == 200
    assert c.get("/v1/devices/unit-2/desired").status_code == 403
    assert c.get("/v1/stock").status_code == 403  # a unit reads nothing but its desired state


def test_backend_key_reads_but_cannot_write(live: Live) -> None:
    register_unit(live.store, "unit-1")
    c = live.client(make_key(live.store, Role.BACKEND))
    for path in ("/v1/stock", "/v1/stock/skus", "/v1/interest", "/v1/events", "/v1/stores"):
        assert c.get(path).status_code == 200, path
    writes = [
        c.post(URL, json=batch("unit-1", [1])),
        c.post("/v1/stores", json={"store_id": "s9"}),
        c.post("/v1/devices", json={"device_id": "u9", "store_id": "store-1", "bay_id": "bay-1"}),
        c.post("/v1/keys", json={"role": "operator"}),
        c.put("/v1/devices/unit-1/desired", json={"model_version": 3}),
    ]
    for r in writes:
        assert (r.status_code, r.json()["code"]) == (403, "role_forbidden")
    assert count_events(live.store) == 0


def test_operator_registers_fleet_and_sets_desired_state(live: Live) -> None:
    op = live.client(make_key(live.store, Role.OPERATOR))
    assert op.post("/v1/stores", json={"store_id": "s1", "name": "One"}).status_code == 201
    assert op.post("/v1/stores", json={"store_id": "s1"}).json()["code"] == "conflict"
    assert op.post("/v1/stores/s1/bays", json={"bay_id": "b1"}).status_code == 201
    assert op.post("/v1/stores/nope/bays", json={"bay_id": "b1"}).status_code == 404
    slot = {"slot": 2, "sku": "SKU-9", "unit_grams": 410.0}
    assert op.post("/v1/stores/s1/bays/b1/slots", json=slot).status_code == 201
    assert op.get("/v1/stores/s1/bays/b1/slots").json()["data"][0]["sku"] == "SKU-9"
    dev = {"device_id": "u1", "store_id": "s1", "bay_id": "b1"}
    assert op.post("/v1/devices", json=dev).status_code == 201
    made = op.post("/v1/keys", json={"role": "unit", "device_id": "u1"}).json()
    assert made["token"].startswith("ssk_") and made["device_id"] == "u1"
    assert op.post("/v1/keys", json={"role": "unit"}).status_code == 422
    assert (
        op.put(
            "/v1/devices/u1/desired", json={"model_version": 4, "config": {"camera.fps": 5}}
        ).status_code
        == 200
    )
    unit = live.client(made["token"])
    got = unit.get("/v1/devices/u1/desired").json()
    assert (got["model_version"], got["config"]) == (4, {"camera.fps": 5})
    # the unit's events are held to its registration: slot 0 is not a slot of its bay
    r = unit.post(URL, json=batch("u1", [1, 2], store="s1", bay="b1"))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        403,
        "unknown_slot",
        "events.0.slot",
    )
    doc = batch("u1", [1, 2], store="s1", bay="b1", slot=2, sku=None)
    assert unit.post(URL, json=doc).status_code == 200
    sku = {e["sku"] for e in op.get("/v1/events").json()["data"]}
    assert sku == {"SKU-9"}  # filled from the registered slot
    listed = op.get("/v1/devices").json()
    assert listed["count"] == 1 and listed["data"][0]["highest_contiguous"] == 2
    keys = op.get("/v1/keys").json()
    assert all("token" not in k and "secret" not in str(k) for k in keys["data"])


def test_rate_limit_per_key_is_429_with_retry_after(tmp_path) -> None:
    s = build_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", rate_per_s=0.5, rate_burst=3)
    with serve(s) as live:
        a = live.client(make_key(live.store, Role.BACKEND))
        b = live.client(make_key(live.store, Role.BACKEND))
        codes = [a.get("/v1/stock").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = a.get("/v1/stock")
        assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert b.get("/v1/stock").status_code == 200  # buckets are per key


def test_key_is_checked_before_the_body(live: Live) -> None:
    r = live.client().post(URL, content=b"{broken")
    assert (r.status_code, r.json()["code"]) == (401, "missing_key")
    be = live.client(make_key(live.store, Role.BACKEND))
    r = be.post(URL, content=b"{broken")
    assert (r.status_code, r.json()["code"]) == (403, "role_forbidden")
