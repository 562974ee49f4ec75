"""Reporting the unit's calibration to the cloud, and keeping it until the cloud has it.

Each time a slot is calibrated (``provision calibrate``, its one-step forms or the
setup page), :func:`record` folds the slot into the unit's latest
:class:`~models.wire_fleet.CalibrationReport` (every slot: tare, scale, known and check
weights, when) and writes it whole to ``calibration-report.json``. The report is sent
with ``PUT /v1/devices/{id}/calibration``; once the cloud accepts one,
``calibration-report.sent`` holds its time. A report whose time differs from that
is still to send: :func:`pending`. So a unit calibrated offline sends it later —
:class:`CalibrationReporter`, a worker of the agent, tries at start and again with
backoff until the cloud has it — and nothing is lost when the power goes meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests
from pydantic import ValidationError

from edge.errors import EdgeError
from models.atomic import write_text_atomic
from models.wire_fleet import CalibrationReport, SlotCalibration

REPORT_FILE = "calibration-report.json"
SENT_FILE = "calibration-report.sent"
CHECK_EVERY_S = 30.0  # how often the agent looks for a new report when all is sent
BACKOFF_S = (5.0, 300.0)  # first and longest wait after a failed send

log = logging.getLogger(__name__)


class CalibrationReportError(EdgeError, ConnectionError):
    """The cloud did not take the calibration report (unreachable, or it refused it)."""


def latest(data_dir: Path) -> CalibrationReport | None:
    """The unit's latest calibration report (None when there is none or it is unreadable)."""
    try:
        text = (data_dir / REPORT_FILE).read_text(encoding="utf-8")
        return CalibrationReport.model_validate_json(text)
    except (OSError, ValidationError, ValueError):
        return None


def record(
    data_dir: Path, entry: SlotCalibration, *, clock: Callable[[], float] = time.time
) -> CalibrationReport:
    """Fold one slot's calibration into the latest report and write it, to be sent."""
    old = latest(data_dir)
    slots = [s for s in (old.slots if old else []) if s.slot != entry.slot]
    return _write(data_dir, old, sorted([*slots, entry], key=lambda s: s.slot), clock)


def retare(
    data_dir: Path, slot: int, offset_counts: float, *, clock: Callable[[], float] = time.time
) -> CalibrationReport | None:
    """A slot's zero was set again (its scale kept): update its entry; None if it has none."""
    old = latest(data_dir)
    if old is None or not any(s.slot == slot for s in old.slots):
        return None
    now = clock()
    slots = [
        s.model_copy(update={"offset_counts": offset_counts, "calibrated_at": now})
        if s.slot == slot
        else s
        for s in old.slots
    ]
    return _write(data_dir, old, slots, lambda: now)


def _write(
    data_dir: Path,
    old: CalibrationReport | None,
    slots: list[SlotCalibration],
    clock: Callable[[], float],
) -> CalibrationReport:
    at = clock()
    if old is not None and at <= old.at:  # the cloud keeps the latest: times must grow
        at = old.at + 0.001
    report = CalibrationReport(at=at, slots=slots)
    write_text_atomic(data_dir / REPORT_FILE, report.model_dump_json(indent=2))
    return report


def pending(data_dir: Path) -> CalibrationReport | None:
    """The latest report when the cloud does not have it yet, else None."""
    report = latest(data_dir)
    if report is None:
        return None
    try:
        sent = json.loads((data_dir / SENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return report
    return None if sent == report.at else report


def mark_sent(data_dir: Path, report: CalibrationReport) -> None:
    """Note that the cloud has ``report`` (a newer report written meanwhile stays pending)."""
    write_text_atomic(data_dir / SENT_FILE, json.dumps(report.at))


def calibration_url(base_url: str, device_id: str) -> str:
    """``PUT`` here to report the device's calibration."""
    return f"{base_url.rstrip('/')}/v1/devices/{quote(device_id, safe='')}/calibration"


Sender = Callable[[CalibrationReport], None]


def http_sender(
    base_url: str,
    device_id: str,
    api_key: str,
    *,
    verify: str | bool = True,
    timeout_s: float = 10.0,
    session: requests.Session | None = None,
) -> Sender:
    """A sender that PUTs a report to the cloud with the unit's key."""
    http = session or requests.Session()
    url = calibration_url(base_url, device_id)

    def send(report: CalibrationReport) -> None:
        try:
            resp = http.put(
                url,
                data=report.model_dump_json(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
                timeout=timeout_s,
                verify=verify,
            )
        except requests.RequestException as err:  # the detail goes to the log, not to staff
            log.debug("PUT %s: %s", url, err)
            raise CalibrationReportError(f"cannot reach the cloud at {base_url}") from err
        if resp.status_code >= 300:
            try:
                body = resp.json()
            except ValueError:
                body = None
            why = body.get("message") if isinstance(body, dict) else None
            why = str(why or resp.text[:200] or resp.reason)
            raise CalibrationReportError(
                f"the cloud at {base_url} refused the calibration (HTTP {resp.status_code}): {why}"
            )

    return send


def send_pending(data_dir: Path, send: Sender) -> CalibrationReport | None:
    """Send the pending report, if any, and note it sent; the report sent, or None.

    Raises :class:`CalibrationReportError` when the cloud does not take it (it stays
    pending).
    """
    report = pending(data_dir)
    if report is None:
        return None
    send(report)
    mark_sent(data_dir, report)
    return report


class CalibrationReporter:
    """The agent's worker: sends a pending report, retrying with backoff until it is in."""

    def __init__(
        self, data_dir: Path, send: Sender, *, on_result: Callable[[bool], None] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.send = send
        self.on_result = on_result or (lambda _ok: None)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: send what is pending, wait, look again."""
        wait = BACKOFF_S[0]
        while not stop.is_set():
            try:
                sent = send_pending(self.data_dir, self.send)
            except CalibrationReportError as err:
                log.info("calibration not reported yet: %s (trying again in %.0f s)", err, wait)
                self.on_result(False)
                if stop.wait(wait):
                    return
                wait = min(wait * 2, BACKOFF_S[1])
                continue
            if sent is not None:
                log.info("calibration of %d slot(s) reported to the cloud", len(sent.slots))
                self.on_result(True)
            wait = BACKOFF_S[0]
            stop.wait(CHECK_EVERY_S)
