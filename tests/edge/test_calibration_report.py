"""The unit's calibration report: kept until the cloud has it, sent to the real cloud.

The report file and its "sent" mark are plain files in the data folder; the sending
goes to the real cloud under uvicorn (a unit key writes only its own device's report,
bad reports are refused with a clear message, a cloud that is down leaves the report
pending until the agent's worker gets it through).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.keys import Role
from cloud.settings import build_settings
from edge.calibration_report import (
    REPORT_FILE,
    CalibrationReporter,
    CalibrationReportError,
    Sender,
    http_sender,
    latest,
    pending,
    record,
    retare,
    send_pending,
)
from models.wire_fleet import CalibrationReport, SlotCalibration
from tests.cloud.console_support import signed_in
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until


def entry(
    slot: int, *, scale: float = 250.0, at: float = 1_800_000_000.0, sku: str = ""
) -> SlotCalibration:
    return SlotCalibration(
        slot=slot,
        channel=slot,
        sku=sku or f"SKU-{slot}",
        offset_counts=15_000.0 + slot,
        counts_per_gram=scale,
        known_grams=500,
        check_grams=200 if slot == 0 else None,
        check_read_grams=200.3 if slot == 0 else None,
        calibrated_at=at,
    )


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Live]:
    settings_ = build_settings(database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0)
    with serve(settings_) as live:
        yield live


def test_slots_are_folded_into_one_report_that_stays_pending_until_sent(tmp_path: Path) -> None:
    assert pending(tmp_path) is None and latest(tmp_path) is None
    first = record(tmp_path, entry(1), clock=lambda: 100.0)
    second = record(tmp_path, entry(0), clock=lambda: 100.0)  # same clock: time still grows
    assert second.at > first.at
    again = record(tmp_path, entry(1, scale=300.0), clock=lambda: 200.0)
    assert [(s.slot, s.counts_per_gram) for s in again.slots] == [(0, 250.0), (1, 300.0)]
    assert pending(tmp_path) == again

    sent: list[CalibrationReport] = []
    assert send_pending(tmp_path, sent.append) == again
    assert sent == [again] and pending(tmp_path) is None
    assert send_pending(tmp_path, sent.append) is None  # nothing new: nothing sent

    moved = retare(tmp_path, 1, 14_000.0, clock=lambda: 300.0)
    assert moved is not None and pending(tmp_path) == moved
    assert [s.offset_counts for s in moved.slots if s.slot == 1] == [14_000.0]
    assert retare(tmp_path, 7, 1.0) is None  # a slot never calibrated has no entry


def test_a_damaged_report_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / REPORT_FILE).write_text("{not json")
    assert latest(tmp_path) is None and pending(tmp_path) is None


def test_the_cloud_keeps_the_units_own_latest_calibration(cloud: Live, tmp_path: Path) -> None:
    key = register_unit(cloud.store, "unit-1", "store-1", "bay-1")
    register_unit(cloud.store, "unit-2", "store-1", "bay-1")
    operator = make_key(cloud.store, Role.OPERATOR)
    send = http_sender(cloud.url, "unit-1", key)
    record(tmp_path, entry(0), clock=lambda: 1_800_000_000.0)
    record(tmp_path, entry(1, sku="<b>SKU</b>"), clock=lambda: 1_800_000_001.0)
    assert send_pending(tmp_path, send) is not None

    with cloud.client(operator) as c:
        got = c.get("/v1/devices/unit-1/calibration").json()
        unit = c.get("/v1/devices/unit-1").json()
        listed = c.get("/v1/devices").json()["data"]
        none_yet = c.get("/v1/devices/unit-2/calibration")
    assert [s["slot"] for s in got["report"]["slots"]] == [0, 1]
    assert got["report"]["slots"][0]["check_read_grams"] == 200.3
    assert unit["calibration"] == got["report"]
    assert [u["calibration"] is None for u in listed] == [False, True]
    assert none_yet.status_code == 404 and "no calibration" in none_yet.json()["message"]
    with signed_in(cloud, operator) as browser:
        page = browser.get("/console/units/unit-1").text
        blank = browser.get("/console/units/unit-2").text
    table = page[page.index('id="calibration"') :]
    assert "&lt;b&gt;SKU&lt;/b&gt;" in table and "<b>SKU</b>" not in table  # escaped
    assert "200 g read as 200.3 g" in table and "not checked" in table and "250.00" in table
    assert "Not reported yet" in blank

    # an older report (out of order) does not replace the newer one
    with cloud.client(key) as c:
        old = CalibrationReport(at=1_700_000_000.0, slots=[entry(5)])
        put = c.put("/v1/devices/unit-1/calibration", json=old.model_dump(mode="json"))
        assert put.is_success, put.text
    with cloud.client(operator) as c:
        kept = c.get("/v1/devices/unit-1/calibration").json()
    assert [s["slot"] for s in kept["report"]["slots"]] == [0, 1]


def test_a_unit_key_reports_only_for_its_own_device(cloud: Live, tmp_path: Path) -> None:
    key = register_unit(cloud.store, "unit-1")
    register_unit(cloud.store, "unit-2")
    record(tmp_path, entry(0))
    with pytest.raises(CalibrationReportError, match=r"HTTP 403.*belongs to device 'unit-1'"):
        send_pending(tmp_path, http_sender(cloud.url, "unit-2", key))
    assert pending(tmp_path) is not None  # refused: still to send
    operator = make_key(cloud.store, Role.OPERATOR)
    with pytest.raises(CalibrationReportError, match="HTTP 403"):
        send_pending(tmp_path, http_sender(cloud.url, "unit-1", operator))
    with cloud.client(operator) as c:
        assert c.get("/v1/devices/unit-2/calibration").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"at": 1, "slots": [{**entry(0).model_dump(), "counts_per_gram": -3}]},
        {"at": 1, "slots": [entry(0).model_dump(), entry(0).model_dump()]},
        {"at": 1, "slots": [entry(0).model_dump()] * 65},
        {"at": 1, "slots": [{**entry(0).model_dump(), "sku": "a\x00b"}]},
        {"at": 1, "slots": [], "extra": True},
        {"at": "yesterday", "slots": []},
    ],
    ids=["negative-scale", "slot-twice", "too-many", "control-char", "unknown-field", "bad-at"],
)
def test_a_bad_report_is_refused_with_a_message(cloud: Live, body: dict[str, object]) -> None:
    key = register_unit(cloud.store, "unit-1")
    with cloud.client(key) as c:
        answer = c.put("/v1/devices/unit-1/calibration", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["at", "slots", "x"]), st.from_type(object), max_size=3))
def test_any_document_either_validates_or_is_refused_cleanly(doc: dict[str, object]) -> None:
    with contextlib.suppress(ValidationError):
        CalibrationReport.model_validate(doc)


def test_a_report_made_offline_is_sent_by_the_agent_worker_once_the_cloud_is_up(
    tmp_path: Path,
) -> None:
    down = http_sender(f"http://127.0.0.1:{free_port()}", "unit-1", "x", timeout_s=2)
    record(tmp_path, entry(0))
    with pytest.raises(CalibrationReportError, match="cannot reach the cloud"):
        send_pending(tmp_path, down)

    cloud_now: list[Sender] = [down]  # the unit's cloud: away first, then back
    results: list[bool] = []
    reporter = CalibrationReporter(tmp_path, lambda r: cloud_now[0](r), on_result=results.append)
    stop = threading.Event()
    worker = threading.Thread(target=reporter.run, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_until(lambda: results == [False], timeout=30)  # tried while the cloud was away
        assert pending(tmp_path) is not None
        settings_ = build_settings(database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0)
        with serve(settings_) as live:
            key = register_unit(live.store, "unit-1")
            cloud_now[0] = http_sender(live.url, "unit-1", key, timeout_s=2)
            wait_until(lambda: pending(tmp_path) is None, timeout=30)
            with live.client(make_key(live.store, Role.OPERATOR)) as c:
                got = c.get("/v1/devices/unit-1/calibration").json()
    finally:
        stop.set()
        worker.join(timeout=10)
    assert results[-1] is True and [s["slot"] for s in got["report"]["slots"]] == [0]
    assert not worker.is_alive()
