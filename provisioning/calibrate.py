"""``shelfsense provision calibrate``: the terminal wizard and its one-step forms.

The readings come from the unit's configured load cells (``serial`` or ``hx711``,
built as the agent builds them; ``sim`` gives an idle bench bay). A background thread
drains them into a :class:`Feed`; each step starts from fresh samples, shows the live
weight on one line and ends with the :class:`~provisioning.wizard.Measure` verdict.
Accepted calibrations are merged into the agent's ``calibration.json`` through
:class:`~edge.signals.calibration.CalibrationStore` (atomic) after every slot, and
noted in the report for the cloud (:mod:`provisioning.cal_report`); a tare taken
alone (``--tare``) waits in ``calibration-tare.json`` for ``--known-grams``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from edge.calibration_report import REPORT_FILE, SENT_FILE
from edge.config import Config, SlotConfig
from edge.errors import CalibrationError
from edge.signals.calibration import CalibrationStore, ChannelCalibration
from edge.workers.build import BLOCK_S, CALIBRATION_FILE
from models.atomic import atomic_write
from models.types import ReadingBlock
from provisioning import cal_report
from provisioning.wizard import Limits, Measure, SlotWizard, Step, Verdict

TARE_FILE = "calibration-tare.json"
NO_DATA_S = 5.0  # no samples at all for this long: the load cells are not there

Source = Callable[[threading.Event], Iterable[ReadingBlock]]


def config_source(cfg: Config) -> Source:
    """The load-cell source the agent would use (``sim``: an idle bench bay)."""
    if cfg.loadcells.source == "sim":
        from firmware_bridge.sim.bench import SimBay

        channels = max([s.channel for s in cfg.slots], default=3) + 1
        bay = SimBay(channels, sps=cfg.loadcells.sps)

        def idle(stop: threading.Event) -> Iterable[ReadingBlock]:
            for block in bay.blocks(BLOCK_S):
                if stop.wait(BLOCK_S):
                    return
                yield block

        return idle
    from edge.health import Health
    from edge.workers.build import hardware_source

    return hardware_source(cfg, Health())


class Feed:
    """Drains a source in a thread; :meth:`take` gives what arrived since the last call."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._blocks: deque[ReadingBlock] = deque(maxlen=400)
        self._last: ReadingBlock | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _run(self, source: Source) -> None:
        try:
            for block in source(self._stop):
                with self._lock:
                    self._blocks.append(block)
                    self._last = block
                if self._stop.is_set():
                    return
        except Exception as err:  # the wizard reports it as a dead channel
            self.error = err

    def take(self) -> list[ReadingBlock]:
        """Blocks that arrived since the last call."""
        with self._lock:
            out = list(self._blocks)
            self._blocks.clear()
        return out

    def latest(self) -> ReadingBlock | None:
        """The newest block read (left in place for :meth:`take`), for a live display."""
        with self._lock:
            return self._last

    def close(self) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(timeout=3)


def measure(feed: Feed, m: Measure, out: TextIO, *, label: str = "weight") -> Verdict:
    """Run one step: fresh samples only, a live line, until the verdict."""
    feed.take()  # what was read before the person pressed Enter is stale
    last_data = time.monotonic()
    while True:
        blocks = feed.take()
        if not blocks:
            if time.monotonic() - last_data > NO_DATA_S:
                out.write("\n")
                return Verdict("dead", m.refuse("dead").message)
            time.sleep(0.05)
            continue
        last_data = time.monotonic()
        for b in blocks:
            p = m.feed(b.counts, b.valid)
            if p.grams is not None:
                live = f"{'about ' if p.approximate else ''}{p.grams:.1f} g"
            else:
                live = "--" if p.counts is None else f"{p.counts:.0f} counts"
            state = "steady" if p.settled else "settling..."
            out.write(f"\r  {label}: {live}  {state}   ")
            out.flush()
            if p.verdict is not None:
                out.write("\n")
                return p.verdict


def load_all(store: CalibrationStore) -> dict[int, ChannelCalibration]:
    """The calibrations so far (none yet is an empty dict)."""
    try:
        return store.load() if store.path.exists() else {}
    except CalibrationError:
        return {}


def save_one(store: CalibrationStore, cal: ChannelCalibration) -> None:
    """Merge one channel's calibration into the store (atomic)."""
    cals = load_all(store)
    cals[cal.channel] = cal
    store.save(cals)


def _ask(inp: TextIO, out: TextIO, text: str) -> str | None:
    out.write(text)
    out.flush()
    line = inp.readline()
    return None if not line else line.strip()


def _grams(inp: TextIO, out: TextIO, text: str, *, optional: bool) -> float | None:
    while True:
        ans = _ask(inp, out, text)
        if ans is None or (optional and ans == ""):
            return None
        try:
            g = float(ans.lower().removesuffix("g").strip())
        except ValueError:
            g = float("nan")
        if 0 < g < 100_000:
            return g
        out.write("  Type the weight in grams as a number, e.g. 500\n")


def _step(
    feed: Feed, wiz: SlotWizard, step: Step, grams: float | None, inp: TextIO, out: TextIO
) -> Verdict | None:
    """Prompt, measure, and on a refusal offer another try; None when the person skips."""
    scales: dict[int, float] = {}
    while True:
        if _ask(inp, out, wiz.prompt(step, grams) + " ") is None:
            return None
        v = measure(feed, wiz.measure(step, grams, scales=scales), out)
        if v.ok:
            return v
        out.write(f"  Not accepted: {v.message}\n")
        again = _ask(inp, out, "  Press Enter to try again, or type s to skip this slot: ")
        if again is None or again.lower().startswith("s"):
            return None


def interactive(
    feed: Feed,
    slots: list[SlotConfig],
    store: CalibrationStore,
    inp: TextIO,
    out: TextIO,
    limits: Limits,
) -> int:
    """The wizard over ``slots``; returns the number of slots left uncalibrated."""
    left = 0
    out.write(f"Calibrating {len(slots)} slot(s). Have a known weight ready (e.g. 500 g).\n")
    for s in slots:
        wiz = SlotWizard(s.slot, s.channel, limits)
        out.write(f"\n== Slot {s.slot} ({s.sku}, load cell channel {s.channel}) ==\n")
        v = _step(feed, wiz, Step.EMPTY, None, inp, out)
        grams = None
        if v is not None:
            wiz.tared(v)
            grams = _grams(inp, out, "Known weight in grams: ", optional=False)
        v = None if grams is None else _step(feed, wiz, Step.KNOWN, grams, inp, out)
        if v is None or grams is None:
            out.write(f"Slot {s.slot} skipped: its old calibration (if any) stays.\n")
            left += 1
            continue
        cal = wiz.scaled(v, grams)
        check = _grams(inp, out, "Second weight to check, grams (Enter to skip): ", optional=True)
        check_counts = None
        if check is not None:
            cv = _step(feed, wiz, Step.CHECK, check, inp, out)
            if cv is None:
                out.write(f"Slot {s.slot} skipped: its old calibration (if any) stays.\n")
                left += 1
                continue
            out.write(f"  Check: {cv.message} for {check:g} g.\n")
            check_counts = cv.mean_counts
        save_one(store, cal)
        cal_report.note(
            store.path.parent,
            s,
            cal,
            check_grams=check,
            check_counts=check_counts,
        )
        out.write(f"Slot {s.slot} calibrated ({cal.counts_per_gram:.2f} counts per gram), saved.\n")
    out.write(f"\nDone: {len(slots) - left} of {len(slots)} slot(s) calibrated in {store.path}\n")
    return left


def tare_only(feed: Feed, slot: SlotConfig, data_dir: Path, out: TextIO, limits: Limits) -> int:
    """``--tare``: measure the empty tray; re-tare a calibrated slot, else keep it for later."""
    store = CalibrationStore(data_dir / CALIBRATION_FILE)
    cals = load_all(store)
    wiz = SlotWizard(slot.slot, slot.channel, limits)
    v = measure(feed, wiz.measure(Step.EMPTY), out)
    if not v.ok:
        out.write(f"Slot {slot.slot}: not accepted: {v.message}\n")
        return 1
    tares = _read_tares(data_dir)
    tares[str(slot.channel)] = {"offset_counts": v.mean_counts, "levels": v.levels}
    with atomic_write(data_dir / TARE_FILE) as f:
        json.dump(tares, f, indent=2)
    old = cals.get(slot.channel)
    if old is not None:
        save_one(
            store,
            ChannelCalibration(old.channel, v.mean_counts, old.counts_per_gram, old.known_grams),
        )
        cal_report.note_retare(data_dir, slot, v.mean_counts)
        out.write(f"Slot {slot.slot}: zero set again; its scale is kept.\n")
    else:
        out.write(
            f"Slot {slot.slot}: empty tray recorded; now place a known weight and run "
            f"--slot {slot.slot} --known-grams GRAMS\n"
        )
    return 0


def known_only(
    feed: Feed, slot: SlotConfig, grams: float, data_dir: Path, out: TextIO, limits: Limits
) -> int:
    """``--known-grams``: scale the slot from the recorded tare and the weight on it now."""
    tare = _read_tares(data_dir).get(str(slot.channel))
    if tare is None:
        out.write(f"Slot {slot.slot}: empty it and run --slot {slot.slot} --tare first.\n")
        return 1
    wiz = SlotWizard(slot.slot, slot.channel, limits)
    wiz.zero = float(tare["offset_counts"])
    wiz.reference = {int(k): float(v) for k, v in tare.get("levels", {}).items()}
    wiz.reference[slot.channel] = wiz.zero
    v = measure(feed, wiz.measure(Step.KNOWN, grams), out)
    if not v.ok:
        out.write(f"Slot {slot.slot}: not accepted: {v.message}\n")
        return 1
    cal = wiz.scaled(v, grams)
    save_one(CalibrationStore(data_dir / CALIBRATION_FILE), cal)
    cal_report.note(data_dir, slot, cal)
    out.write(f"Slot {slot.slot} calibrated ({cal.counts_per_gram:.2f} counts per gram), saved.\n")
    return 0


def match_owner(data_dir: Path) -> None:
    """Give the calibration files the data folder's owner (the service user) when run as root."""
    if os.geteuid() != 0:
        return
    st = data_dir.stat()
    for name in (CALIBRATION_FILE, TARE_FILE, REPORT_FILE, SENT_FILE):
        f = data_dir / name
        if f.exists() and (f.stat().st_uid, f.stat().st_gid) != (st.st_uid, st.st_gid):
            os.chown(f, st.st_uid, st.st_gid)


def _read_tares(data_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((data_dir / TARE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
