"""After calibrating: note each slot in the unit's calibration report and send it to the cloud.

:func:`note` adds an accepted slot to the report kept in the data folder
(:mod:`edge.calibration_report`); :func:`report_now` tries once to send it with the
unit's identity and says what happened. A report the cloud could not take stays
pending: the agent sends it when it runs and the cloud answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from edge.calibration_report import (
    CalibrationReportError,
    http_sender,
    record,
    retare,
    send_pending,
)
from edge.config import Config, SlotConfig
from edge.signals.calibration import ChannelCalibration
from edge.sync.identity import IdentityError, load_identity
from models.wire_fleet import SlotCalibration

REPORT_TIMEOUT_S = 5.0


def note(
    data_dir: Path,
    slot: SlotConfig,
    cal: ChannelCalibration,
    *,
    check_grams: float | None = None,
    check_counts: float | None = None,
) -> None:
    """Add ``slot``'s accepted calibration (and its check, if one was made) to the report."""
    now = time.time()
    entry = SlotCalibration(
        slot=slot.slot,
        channel=slot.channel,
        sku=slot.sku,
        offset_counts=cal.offset_counts,
        counts_per_gram=cal.counts_per_gram,
        known_grams=cal.known_grams,
        check_grams=check_grams,
        check_read_grams=None if check_counts is None else round(cal.grams(check_counts), 2),
        calibrated_at=now,
    )
    record(data_dir, entry, clock=lambda: now)


def note_retare(data_dir: Path, slot: SlotConfig, offset_counts: float) -> None:
    """A calibrated slot's zero was set again: its report entry follows."""
    retare(data_dir, slot.slot, offset_counts)


def report_now(cfg: Config, data_dir: Path, out: TextIO, *, cloud: str | None = None) -> bool:
    """Try once to send the pending report; say what happened. True when the cloud has it.

    ``cloud`` is the cloud's address when the config does not say it yet.
    """
    if cfg.sync.mode == "off":
        out.write("Sync is off (sync.mode = 'off'): the calibration stays on this unit only.\n")
        return False
    try:
        ident = load_identity(data_dir / cfg.sync.identity_file)
    except IdentityError:
        out.write(
            "This unit is not claimed yet: the cloud gets the calibration once it is "
            "claimed and running.\n"
        )
        return False
    send = http_sender(
        cloud or cfg.sync.base_url,
        ident.device_id,
        ident.api_key,
        verify=ident.ca_file or True,
        timeout_s=REPORT_TIMEOUT_S,
    )
    try:
        sent = send_pending(data_dir, send)
    except CalibrationReportError as err:
        out.write(
            f"The cloud did not get the calibration now ({err}): the unit sends it "
            "once it runs and the cloud answers.\n"
        )
        return False
    if sent is not None:
        out.write(f"Calibration of {len(sent.slots)} slot(s) reported to the cloud.\n")
    return True
