"""Training data from the store: windows units upload, labels the fleet gives, `cloud train` on them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.ingest import store_events
from cloud.keys import Role
from cloud.labels import add_correction
from cloud.schemas import CorrectionCreate
from cloud.settings import build_settings
from cloud.store import open_store
from cloud.training_data import labelled_windows
from edge.config import SlotConfig
from edge.events import Origin, WindowDecision, window_events
from edge.stock import StockBook
from models.dataset import LabeledWindow, read_jsonl
from models.wire import ShelfEvent
from shelfsense.cli import main
from tests.cloud.support import Live, count_events, make_key, register_unit
from tests.models.factory import UNIT_GRAMS, make_records

URL = "/v1/ingest/events"
SKUS = {s: f"SKU-{s}" for s in UNIT_GRAMS}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def unit_events(records: list[LabeledWindow], device: str) -> list[list[ShelfEvent]]:
    """Each record's window decided as a unit would (a crude guess), as numbered wire events."""
    book = StockBook(
        SlotConfig.model_validate(
            {"slot": s, "channel": s, "sku": sku, "unit_grams": UNIT_GRAMS[s], "capacity": 50}
        )
        for s, sku in SKUS.items()
    )
    origin = Origin("store-1", "bay-1", SKUS)
    out: list[list[ShelfEvent]] = []
    seq = 0
    for i, r in enumerate(records):
        w = r.window
        guess = WindowDecision(
            "glance" if w.presence else None,
            0.5,
            tuple(("removal" if c.units < 0 else "none", 0.5) for c in w.changes),
        )
        fields = window_events(w, guess, book, origin, wall_time=T0 + timedelta(minutes=10 * i))
        evs = []
        for f in fields:
            seq += 1
            evs.append(ShelfEvent.model_validate({**f, "device_id": device, "seq": seq}))
        out.append(evs)
    return out


def correct(ev: ShelfEvent, label: str | None) -> dict[str, Any] | None:
    """A staff correction of one event to ``label``."""
    if label is None:
        return None
    return {"device_id": ev.device_id, "seq": ev.seq, "label": label, "note": ""}


def truth_corrections(r: LabeledWindow, evs: list[ShelfEvent]) -> list[dict[str, Any]]:
    """Corrections that give every event of a window its true label."""
    stock = iter(r.stock_labels)
    out = [
        correct(ev, r.interest if ev.kind == "interest" else next(stock))
        for ev in evs
        if ev.kind != "level"
    ]
    return [c for c in out if c is not None]


def test_uploaded_windows_come_back_with_the_fleets_labels(live: Live, tmp_path: Path) -> None:
    records = make_records(24, seed=5)
    per_window = unit_events(records, "unit-1")
    assert all(evs[0].window is not None for evs in per_window)
    assert all(ev.window is None for evs in per_window for ev in evs[1:])
    # one window loses a stock event on the way (its stock labels cannot be placed)
    broken = next(i for i, r in enumerate(records) if i % 2 == 0 and len(r.window.changes) > 1)
    lost = next(
        ev for ev in per_window[broken] if ev.kind == "stock" and ev is not per_window[broken][0]
    )
    sent = [ev for evs in per_window for ev in evs if ev is not lost]
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    op = live.client(make_key(live.store, Role.OPERATOR))
    body = {"device_id": "unit-1", "events": [e.model_dump(mode="json") for e in sent]}
    assert u.post(URL, json=body).status_code == 200
    # staff label the even windows; a POS sale labels one removal of an odd window
    for i in range(0, len(records), 2):
        for fix in truth_corrections(records[i], per_window[i]):
            if fix["seq"] != lost.seq:
                assert be.post("/v1/corrections", json=fix).status_code == 201
    sold = next(
        (i, ev)
        for i, evs in enumerate(per_window)
        if i % 2 == 1
        for ev in evs
        if ev.kind == "stock" and ev.label == "removal"
    )
    sale = {
        "store_id": "store-1",
        "sku": sold[1].sku,
        "quantity": abs(sold[1].units or 1),
        "sold_at": sold[1].wall_time.isoformat(),
    }
    assert be.post("/v1/sales", json=sale).json()["matched_units"] == sale["quantity"]

    out = tmp_path / "windows.jsonl"
    db = ["--database-url", live.settings.database_url]
    assert main(["cloud", "export-labels", "--windows", *db, str(out)]) == 0
    got = read_jsonl(out)
    over_http = op.get("/v1/labels/windows")
    assert over_http.status_code == 200
    lines = [json.loads(x) for x in over_http.text.splitlines()]
    assert [LabeledWindow.from_dict(x) for x in lines] == got
    assert [x["source"]["seq"] for x in lines] == [
        per_window[i][0].seq for i in sorted({*range(0, len(records), 2), sold[0]})
    ]

    expect: dict[int, LabeledWindow] = {}
    for i in range(0, len(records), 2):
        r = records[i]
        stock = (None,) * len(r.window.changes) if i == broken else r.stock
        expect[i] = LabeledWindow(r.window, r.interest, stock)
    pos_stock = tuple(
        "removal" if ev is sold[1] else None for ev in per_window[sold[0]] if ev.kind == "stock"
    )
    expect[sold[0]] = LabeledWindow(records[sold[0]].window, None, pos_stock)
    assert got == [expect[i] for i in sorted(expect)]
    with live.store.engine.connect() as conn:  # read in pages of 5 windows: the same
        assert [w.record for w in labelled_windows(conn, chunk=5)] == got
    assert got[0].window == records[0].window  # the window itself, exactly as the unit saw it

    everything = tmp_path / "all.jsonl"
    assert main(["cloud", "export-labels", "--windows", "--all", *db, str(everything)]) == 0
    assert [r.window for r in read_jsonl(everything)] == [r.window for r in records]
    assert op.get("/v1/labels/windows", params={"labeled_only": "false"}).text.count("\n") == 24


def test_a_malformed_window_refuses_its_batch(live: Live) -> None:
    [evs] = unit_events(make_records(1, seed=3), "unit-2")
    bad = evs[0].model_dump(mode="json")
    bad["window"]["hour"] = 25
    u = live.client(register_unit(live.store, "unit-2"))
    r = u.post(URL, json={"device_id": "unit-2", "events": [bad]})
    assert r.status_code == 422
    assert "window" in r.json()["field"] and "hour" in r.json()["field"]
    assert count_events(live.store, "unit-2") == 0


@pytest.mark.slow(seconds=30)
def test_cloud_train_reads_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    store = open_store(url, pool_size=2)
    try:
        register_unit(store, "unit-3")
        records = make_records(400, seed=21)
        per_window = unit_events(records, "unit-3")
        store_events(store, [ev for evs in per_window for ev in evs])
        with store.writer.begin() as conn:
            for r, evs in zip(records, per_window, strict=True):
                for fix in truth_corrections(r, evs):
                    add_correction(conn, CorrectionCreate.model_validate(fix))
    finally:
        store.dispose()
    cfg = tmp_path / "cloud.toml"
    cfg.write_text(f'database_url = "{url}"\n')
    assert build_settings(cfg).database_url == url
    out = tmp_path / "out"
    tiny = ["--teacher", "tiny", "--student", "student", "--epochs", "0.8", "--threads", "1"]
    args = ["cloud", "train", "--from-store", "--config", str(cfg), "--out", str(out)]
    code = main([*args, "--heldout-fraction", "0.4", "--no-progress", *tiny])
    metrics = json.loads((out / "metrics.json").read_text())
    assert code == 0, metrics["gates"]
    assert (out / "bundle" / "manifest.json").is_file()
    facts = metrics["facts"]
    assert facts["training windows"] + facts["held-out windows"] == 400
