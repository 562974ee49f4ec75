"""Labels: POS sales matched to removals, staff corrections, the JSONL export (HTTP and file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cloud.keys import Role
from cloud.labels import SaleWindow, write_export
from models.wire import ShelfEvent
from tests.cloud.support import Live, event, make_key, register_unit

URL = "/v1/ingest/events"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)


def test_sales_match_removals_in_window_and_corrections_override(live: Live, tmp_path) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    op = live.client(make_key(live.store, Role.OPERATOR))
    evs = [
        event("unit-1", 1, t=T0 - timedelta(hours=3), sku="A"),  # too early for the sale
        event("unit-1", 2, t=T0 - timedelta(minutes=30), sku="A"),
        event("unit-1", 3, t=T0 - timedelta(minutes=5), sku="A"),
        event("unit-1", 4, t=T0 - timedelta(minutes=4), sku="B"),  # other SKU
        event("unit-1", 5, t=T0 - timedelta(minutes=3), sku="A", label="return", units=1),
        event("unit-1", 6, t=T0 - timedelta(minutes=20), sku="A"),
    ]
    assert u.post(URL, json={"device_id": "unit-1", "events": evs}).status_code == 200
    sale = {"store_id": "store-1", "sku": "A", "quantity": 2, "sold_at": T0.isoformat()}
    r = be.post("/v1/sales", json=sale)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["matched_units"] == 2
    ids = {e["seq"]: e["id"] for e in be.get("/v1/events").json()["data"]}
    assert sorted(got["matched_event_ids"]) == sorted([ids[3], ids[6]])  # nearest first
    # a second sale takes what is left in its window; nothing is labelled twice
    r = be.post("/v1/sales", json={**sale, "quantity": 5})
    assert r.json()["matched_event_ids"] == [ids[2]] and r.json()["matched_units"] == 1
    # staff: event 3 was really a return; an unknown label or event is refused
    fix = {"device_id": "unit-1", "seq": 3, "label": "return", "note": "put back"}
    r = be.post("/v1/corrections", json=fix)
    assert r.status_code == 201 and r.json()["previous_label"] == "removal"
    r = be.post("/v1/corrections", json={**fix, "label": "take"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "unknown_label", "label")
    assert be.post("/v1/corrections", json={**fix, "seq": 99}).status_code == 404
    assert be.get("/v1/labels/export").status_code == 403  # training data: operator only
    r = op.get("/v1/labels/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    by_seq = {x["event"]["seq"]: x for x in lines}
    assert set(by_seq) == {2, 3, 6}
    assert (by_seq[3]["true_label"], by_seq[3]["label_source"], by_seq[3]["note"]) == (
        "return",
        "staff",
        "put back",
    )
    assert (by_seq[6]["true_label"], by_seq[6]["label_source"]) == ("removal", "pos")
    assert by_seq[6]["sale_id"] is not None
    ShelfEvent.model_validate(by_seq[2]["event"])  # the event part is the wire schema
    everything = [
        json.loads(x)
        for x in op.get("/v1/labels/export", params={"labeled_only": False}).text.splitlines()
    ]
    assert [x["event"]["seq"] for x in everything] == [1, 2, 3, 4, 5, 6]
    # the same export as a file, written atomically
    out = tmp_path / "labels.jsonl"
    n = write_export(live.store, out, window=SaleWindow(timedelta(hours=2), timedelta(minutes=10)))
    assert n == 3 and [json.loads(x) for x in out.read_text().splitlines()] == lines
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_late_removals_match_pending_sales_at_export(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    op = live.client(make_key(live.store, Role.OPERATOR))
    sale = {"store_id": "store-1", "sku": "A", "quantity": 1, "sold_at": T0.isoformat()}
    assert be.post("/v1/sales", json=sale).json()["matched_units"] == 0
    late = event("unit-1", 1, t=T0 - timedelta(minutes=2), sku="A")
    assert u.post(URL, json={"device_id": "unit-1", "events": [late]}).status_code == 200
    lines = op.get("/v1/labels/export").text.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["label_source"] == "pos"
