"""The unit's side of the setup page: claim, one calibration step at a time, what it sees.

:class:`SetupUnit` carries out what a signed-in phone asks, with the same parts the
terminal commands use: :func:`~provisioning.claim.claim` for the code, a
:class:`~provisioning.calibrate.Feed` of the load cells with the
:class:`~provisioning.wizard.SlotWizard` decisions for each slot (tare, then a known
weight, saved atomically as soon as accepted), the live weight of every slot, and the
newest decisions in the agent's outbox (read only; the agent may be writing it).
One calibration step runs at a time; each answers with a message for staff.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge.camera.source import FrameSource
from edge.config import Config, SlotConfig
from edge.signals.calibration import CalibrationStore
from edge.workers.build import CALIBRATION_FILE
from provisioning import cal_report
from provisioning.calibrate import Feed, load_all, match_owner, measure, save_one
from provisioning.camera_claim import (
    QrClaimState,
    QrDecoder,
    QrUnavailable,
    watch_camera,
    zxing_decoder,
)
from provisioning.claim import IDENTITY_FILE, ClaimError, ClaimResult, claim
from provisioning.setup_page import SlotView
from provisioning.wizard import Limits, SlotWizard, Step

RECENT = 10
ClaimFn = Callable[..., ClaimResult]
StartFn = Callable[[], None]


def start_service() -> None:
    """Start the installed agent service (``provision install``); OSError when it cannot."""
    import subprocess

    from provisioning.install import SERVICE

    try:
        done = subprocess.run(
            ["systemctl", "start", SERVICE], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        raise OSError(f"systemctl start {SERVICE} took more than a minute") from None
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"systemctl start {SERVICE} failed")


class SetupUnit:
    """Claim and calibration on behalf of the setup page (see the module docstring)."""

    def __init__(
        self,
        cfg: Config,
        feed: Feed,
        *,
        config_path: Path | None = None,
        cloud: str | None = None,
        limits: Limits | None = None,
        claim_fn: ClaimFn = claim,
        start_agent: StartFn = start_service,
        on_claimed: Callable[[ClaimResult], object] | None = None,
    ) -> None:
        self.cfg = cfg
        self.feed = feed
        self.config_path = config_path
        self.cloud = cloud or cfg.sync.base_url or None
        self.limits = limits or Limits(sps=cfg.loadcells.sps)
        self.data_dir = Path(cfg.unit.data_dir)
        self.store = CalibrationStore(self.data_dir / CALIBRATION_FILE)
        self._claim_fn = claim_fn
        self._start_agent = start_agent
        self._on_claimed = on_claimed or (lambda _r: None)
        self.running = False  # the agent has the load cells now
        self._slots = {s.slot: s for s in cfg.slots}
        self._wizards = {s.slot: SlotWizard(s.slot, s.channel, self.limits) for s in cfg.slots}
        self._measuring = threading.Lock()
        self._claiming = threading.Lock()
        self.claimed: ClaimResult | None = None
        self._camera_note = "The camera is not watching for claim codes."
        self.camera_state: QrClaimState | None = None
        self._camera_stop: threading.Event | None = None

    @property
    def camera_note(self) -> str:
        """What the camera is doing about the claim, for the page."""
        state = self.camera_state
        if state is not None and state.last_message:
            return f"Camera: {state.last_message}"
        return self._camera_note

    # -- claim ---------------------------------------------------------------------

    def claim_code(self, code: str) -> ClaimResult:
        """Claim with ``code``; :class:`ClaimError` with a message for staff when it fails."""
        if self.cloud is None:
            raise ClaimError(
                "this unit does not know the cloud's address: start setup with --cloud URL"
            )
        with self._claiming:
            if self.claimed is not None:
                return self.claimed
            said: list[str] = []
            result = self._claim_fn(
                code,
                self.cloud,
                self.data_dir,
                config=self.config_path,
                owner=_data_owner(self.data_dir),
                say=said.append,
            )
            self.claimed = result
            if self._camera_stop is not None:  # claimed by hand: the camera has no more to do
                self._camera_stop.set()
        self._on_claimed(result)
        return result

    def claim(self, typed: str) -> tuple[str, bool]:
        """``(message, refused)`` for a code typed on the page."""
        try:
            r = self.claim_code(typed)
        except ClaimError as err:
            return f"Not claimed: {err}", True
        return f"Claimed: this unit is {r.device_id} on {r.store_id}/{r.bay_id}.", False

    def claim_state(self) -> tuple[str, bool]:
        """What the page says about the claim, and whether it is done."""
        r = self.claimed
        if r is not None:
            return f"Claimed: this unit is {r.device_id} on {r.store_id}/{r.bay_id}.", True
        ident = self.data_dir / IDENTITY_FILE
        if ident.exists():
            try:
                device = json.loads(ident.read_text(encoding="utf-8")).get("device_id", "")
            except (OSError, ValueError):
                device = ""
            return f"Claimed earlier: this unit is {device or 'registered'}.", True
        return "Not claimed yet: type the code, or hold its QR code up to the camera.", False

    # -- calibration ---------------------------------------------------------------

    def slot(self, number: int) -> SlotConfig | None:
        """The configured slot ``number``, if there is one."""
        return self._slots.get(number)

    def calibrate(self, number: int, step: str, grams: float | None) -> tuple[str, bool]:
        """Run one step on slot ``number``: ``(message, refused)``."""
        if self.running:
            return (
                "The unit is running and reads the load cells itself: calibrate in setup only.",
                True,
            )
        s = self._slots.get(number)
        if s is None:
            known = ", ".join(str(n) for n in self._slots) or "none"
            return f"There is no slot {number} (this unit has slots {known}).", True
        wiz = self._wizards[number]
        if step == "known" and wiz.zero is None:
            return f"Slot {number}: empty the tray and press Tray is empty first.", True
        if step == "known" and (grams is None or not 0 < grams < 100_000):
            return "Type the known weight in grams, e.g. 500.", True
        if not self._measuring.acquire(blocking=False):
            return "Another step is being measured: wait for it to finish.", True
        try:
            if step == "empty":
                v = measure(self.feed, wiz.measure(Step.EMPTY), io.StringIO())
                if not v.ok:
                    return f"Slot {number}: not accepted: {v.message}", True
                wiz.tared(v)
                return (
                    f"Slot {number}: empty tray recorded. Now place a known weight on it, "
                    "type the weight and press Weight placed.",
                    False,
                )
            assert grams is not None
            v = measure(self.feed, wiz.measure(Step.KNOWN, grams), io.StringIO())
            if not v.ok:
                return f"Slot {number}: not accepted: {v.message}", True
            cal = wiz.scaled(v, grams)
            save_one(self.store, cal)
            cal_report.note(self.data_dir, s, cal)
            said = io.StringIO()
            cal_report.report_now(self.cfg, self.data_dir, said, cloud=self.cloud)
            return (
                f"Slot {number} calibrated ({cal.counts_per_gram:.2f} counts per gram), saved. "
                + said.getvalue().strip(),
                False,
            )
        finally:
            self._measuring.release()

    def slot_views(self) -> list[SlotView]:
        """Every slot with its calibration state and live weight."""
        cals = load_all(self.store)
        block = self.feed.latest()
        out = []
        for s in self._slots.values():
            level = None
            if block is not None and s.channel < block.counts.shape[1]:
                good = block.counts[:, s.channel][block.valid[:, s.channel]]
                level = float(np.mean(good)) if good.size else None
            cal, wiz = cals.get(s.channel), self._wizards[s.slot]
            if self.running:
                weight = "read by the unit"
            elif level is None:
                weight = "no reading"
            elif cal is not None:
                weight = f"{cal.grams(level):.1f} g"
            elif wiz.zero is not None:
                weight = f"about {(level - wiz.zero) / self.limits.nominal_counts_per_gram:.0f} g"
            else:
                weight = f"{level:.0f} counts"
            out.append(
                SlotView(s.slot, s.channel, s.sku, cal is not None, wiz.zero is not None, weight)
            )
        return out

    # -- claim by camera ----------------------------------------------------------

    def watch_camera(
        self,
        source: FrameSource,
        stop: threading.Event,
        *,
        decoder: QrDecoder | None = None,
        say: Callable[[str], None] = print,
    ) -> threading.Thread | None:
        """Watch ``source`` for a claim code's QR in a thread; None (and why, on the page)
        when this unit has no QR decoder."""
        try:
            decode = decoder or zxing_decoder()
        except QrUnavailable as err:
            self._camera_note = str(err)
            say(str(err))
            return None
        self._camera_note = "The camera is watching for a claim code: hold its QR code up to it."
        state = self.camera_state = QrClaimState()
        self._camera_stop = stop

        def run() -> None:
            try:
                watch_camera(source, self.claim_code, stop, decoder=decode, state=state, say=say)
            except Exception as err:  # a camera that fails leaves typing the code
                state.last_message = f"the camera stopped ({err}); type the code instead"
                say(state.last_message)
                return
            if state.claimed is not None:
                say(state.last_message)

        thread = threading.Thread(target=run, name="camera-claim", daemon=True)
        thread.start()
        return thread

    # -- start the unit ----------------------------------------------------------

    def start(self) -> tuple[str, bool]:
        """Hand the load cells to the agent and start it: ``(message, refused)``."""
        if self.running:
            return "The unit is already running.", False
        if not self.claim_state()[1]:
            return "Claim the unit first (step 1).", True
        cals = load_all(self.store)
        missing = [str(s.slot) for s in self._slots.values() if s.channel not in cals]
        if missing:
            return f"Calibrate slot(s) {', '.join(missing)} first (step 2).", True
        if not self._measuring.acquire(blocking=False):
            return "Another step is being measured: wait for it to finish.", True
        try:
            self.feed.close()  # the agent reads the load cells from now on
            match_owner(self.data_dir)  # the service user reads what setup wrote as root
            try:
                self._start_agent()
            except OSError as err:
                self.feed = Feed(self.feed.source)  # setup keeps the load cells
                return f"The unit could not be started: {err}", True
            self.running = True
        finally:
            self._measuring.release()
        return (
            "The unit is running: take a product off a slot and put it back; "
            "its decisions appear below within seconds.",
            False,
        )

    # -- see it working ------------------------------------------------------------

    def decisions(self) -> tuple[list[tuple[str, ...]], str]:
        """The newest decisions in the unit's outbox as table rows, and a note."""
        path = self.data_dir / self.cfg.buffer.file
        if not path.exists():
            return [], (
                "No decisions yet: the unit decides once it runs "
                "(calibrate, then `systemctl start shelfsense`)."
            )
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                rows = db.execute(
                    "SELECT seq, body, synced_at FROM outbox ORDER BY seq DESC LIMIT ?", (RECENT,)
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as err:
            return [], f"The unit's decisions cannot be read now ({err})."
        out = [_row(seq, body, synced) for seq, body, synced in rows]
        note = f"The {len(out)} newest decision(s):" if out else "No decisions yet."
        return out, note


def _data_owner(data_dir: Path) -> str | None:
    """Run as root, the identity goes to the data folder's owner (the service user)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwuid(data_dir.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def _row(seq: int, body: str, synced: float | None) -> tuple[str, ...]:
    try:
        ev: dict[str, Any] = json.loads(body)
    except ValueError:
        ev = {}
    when = str(ev.get("wall_time", ""))
    with contextlib.suppress(ValueError):
        when = datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%H:%M:%S")
    what = f"{ev.get('kind', '?')}: {ev.get('label', '?')}"
    slot = "" if ev.get("slot") is None else f"{ev['slot']} ({ev.get('sku') or ''})"
    moved = []
    units, grams = ev.get("units"), ev.get("grams")
    if isinstance(units, int | float) and math.isfinite(units):
        moved.append(f"{units:+g} unit(s)")
    if isinstance(grams, int | float) and math.isfinite(grams):
        moved.append(f"{grams:+.0f} g")
    return (str(seq), when, what, slot, ", ".join(moved), "yes" if synced else "not yet")
