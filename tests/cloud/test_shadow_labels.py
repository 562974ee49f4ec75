"""Labelled accuracy of a shadow candidate, from events, a matched sale and a correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.keys import Role
from cloud.shadow_labels import labelled_shadow
from cloud.shadow_scoring import HeadAccuracy
from tests.cloud.support import Live, event, make_key, register_unit

URL = "/v1/ingest/events"
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def shadowed(seq: int, label: str, candidate: str, version: int = 7, units: int = -1) -> dict:
    ev = event("unit-1", seq, t=T0 - timedelta(minutes=seq), sku="A", label=label, units=units)
    return ev | {"shadow": {"version": version, "label": candidate}}


def test_sale_and_correction_score_both_models(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    evs = [
        shadowed(1, "removal", "removal"),  # sold: both right
        shadowed(2, "removal", "restock"),  # sold: the candidate is wrong
        shadowed(3, "removal", "return"),  # corrected to return: the candidate is right
        shadowed(4, "removal", "removal", version=8),  # another candidate, and past the sale
        shadowed(5, "return", "return", units=1),  # never labelled: not counted
    ]
    r = u.post(URL, json={"device_id": "unit-1", "events": evs})
    assert r.status_code == 200, r.text
    sale = {"store_id": "store-1", "sku": "A", "quantity": 3, "sold_at": T0.isoformat()}
    assert be.post("/v1/sales", json=sale).status_code == 201
    fix = {"device_id": "unit-1", "seq": 3, "label": "return", "note": ""}
    assert be.post("/v1/corrections", json=fix).status_code == 201
    with live.store.writer.connect() as conn:
        assert labelled_shadow(conn, 7) == {"stock": HeadAccuracy(3, 2, 2)}
        assert labelled_shadow(conn, 7, units=["unit-2"]) == {}
        assert labelled_shadow(conn, 8) == {}  # the sale of 3 took the nearest: 1, 2, 3


def test_a_sale_labels_a_removal_only_the_candidate_called_so(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    evs = [
        shadowed(1, "sensor_fault", "removal"),  # sold: only the candidate is right
        shadowed(2, "sensor_fault", "sensor_fault"),  # neither said removal: not matched
    ]
    assert u.post(URL, json={"device_id": "unit-1", "events": evs}).status_code == 200
    sale = {"store_id": "store-1", "sku": "A", "quantity": 2, "sold_at": T0.isoformat()}
    r = be.post("/v1/sales", json=sale)
    assert r.status_code == 201, r.text
    assert r.json()["matched_units"] == 1
    with live.store.writer.connect() as conn:
        assert labelled_shadow(conn, 7) == {"stock": HeadAccuracy(1, 0, 1)}
