"""Building the sensing and deciding workers of an agent from its unit config.

:func:`add_sensing` plugs three workers into an :class:`~edge.agent.Agent`: ``weight``
(``loadcells.source``: ``sim`` | ``hx711`` | ``serial``), ``camera``
(``camera.source``) and ``decisions`` (the installed model, else the rules). In sim
mode the store twin plans ``sim_hours`` of the configured scenario and both sensors
play it at ``speed`` times real time (0: as fast as the CPU goes); a restarted sim
unit replays the day without pacing up to the last window it committed (its buffer, or
the sim mark it keeps beside it, whichever is further), so every committed event stays
committed once and the day goes on where it stopped; a different run (scenario, seed,
hours) starts from the beginning. ``Sensing.note`` says which it is. A sim played to
its end asks the agent to finish once its outbox is sent. Slot counts come from the
scale (the twin's fill only seeds the model's slot context, as in training).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import Config, SlotConfig
from edge.events import Origin
from edge.health import Health
from edge.stock import StockBook
from edge.windows import Windower
from edge.workers.camera import CameraFeed
from edge.workers.decide import BundleWatch, WeightOnlyDecider, build_decider
from edge.workers.decision import DecisionWorker, LevelReports
from edge.workers.state import SimMark, load_sim_mark, load_stock, save_sim_mark
from edge.workers.timeline import Inbox, Pace
from edge.workers.weight import BlockSource, WeightWorker
from models.foreign import Tolerance
from models.types import ReadingBlock

if TYPE_CHECKING:
    from edge.agent import Agent
    from edge.camera.config import CameraConfig
    from edge.camera.source import FrameSource
    from firmware_bridge.sim.twin import SimRun

log = logging.getLogger(__name__)

BLOCK_S = 0.5  # load-cell block length the weight worker processes at once
SIM_TICK_S = 0.5  # decision step in sim mode (simulated seconds)
STOCK_FILE = "stock.json"
SIM_MARK_FILE = "sim_mark.json"
CALIBRATION_FILE = "calibration.json"


@dataclass
class Sensing:
    """The workers built for an agent (tests and benches look inside)."""

    inbox: Inbox
    weight: WeightWorker
    decisions: DecisionWorker
    camera: CameraFeed | None = None
    run: SimRun | None = None
    resumed_through: int = 0
    resumed_at: float = 0.0
    note: str = ""
    played_out: bool = False  # this sim day was already played to the end here


def camera_config(config: Config) -> CameraConfig:
    """The ``[camera]`` section (defaults when the config has none)."""
    from edge.camera.config import CameraConfig

    cam = getattr(config, "camera", None)
    return cam if isinstance(cam, CameraConfig) else CameraConfig.model_validate({})


def last_committed(agent: Agent) -> tuple[int, float]:
    """``(episode, mono_time)`` of the newest event in the buffer ((0, 0.0) when empty)."""
    last = agent.buffer.last_body()
    if last is None:
        return 0, 0.0
    body = json.loads(last)
    return int(body.get("episode") or 0), float(body.get("mono_time") or 0.0)


def _sim_slots(run_slots: Iterable[Any]) -> list[SlotConfig]:
    return [
        SlotConfig.model_validate(
            {
                "slot": s.slot,
                "channel": s.channel,
                "sku": s.sku,
                "unit_grams": s.unit_grams,
                "capacity": s.capacity,
            }
        )
        for s in run_slots
    ]


def add_sensing(
    agent: Agent,
    config: Config | None = None,
    *,
    speed: float = 1.0,
    sim_hours: float = 8.0,
    camera: bool = True,
) -> Sensing:
    """Build the weight, camera and decision workers and plug them into ``agent``."""
    from edge.signals.calibration import CalibrationStore
    from edge.signals.pipeline import WeightPipeline, slot_signals

    cfg = config or agent.config
    lc = cfg.loadcells
    data_dir = Path(cfg.unit.data_dir)
    health = agent.health
    sim = lc.source == "sim"
    run = None
    resumed, origin_t = (0, 0.0)
    if sim:
        from edge.signals.replay import simulated_calibration
        from firmware_bridge.sim.loadcell import LoadCellSim
        from firmware_bridge.sim.scenario import load_scenario
        from firmware_bridge.sim.twin import StoreTwin

        sc = load_scenario(lc.sim_scenario)
        run = StoreTwin(sc, lc.sim_seed).simulate(sim_hours * 3600.0)
        cells = LoadCellSim(run, sc, lc.sim_seed)
        slots = list(cfg.slots) or _sim_slots(sc.slots)
        calibrations = simulated_calibration(cells)
        sps = sc.sps
        sim_run = {"scenario": sc.name, "seed": lc.sim_seed, "hours": sim_hours}
        resumed, origin_t, note, played = _resume_point(agent, data_dir / SIM_MARK_FILE, sim_run)
        keeper = _MarkKeeper(data_dir / SIM_MARK_FILE, sim_run, agent)
        keeper.episode, keeper.mono_time = resumed, origin_t

        def blocks(stop: threading.Event) -> Iterable[ReadingBlock]:
            return cells.blocks(BLOCK_S)

        source: BlockSource = blocks
        book = StockBook(slots, config=cfg.stock)  # counts come from the scale
        context_units: dict[int, int] = dict(run.initial_units)
        stock_file = None
        health.set("sim", {**sim_run, "resumed_through": resumed, "resumed_at_s": origin_t})
    else:
        slots = list(cfg.slots)
        if not slots:
            raise ValueError(f"loadcells.source = '{lc.source}' needs [[slots]] in the config")
        calibrations = CalibrationStore(data_dir / CALIBRATION_FILE).load()
        sps = lc.sps
        source = hardware_source(cfg, health)
        stock_file = data_dir / STOCK_FILE
        book = load_stock(stock_file, slots, config=cfg.stock) or StockBook(slots, config=cfg.stock)
        context_units = book.known()
        note, played = "", False
    # whole units are judged within the noise the signal path allows a settled level
    book.tolerance = Tolerance(noise_g=cfg.signals.settle_band_g)
    names = ["weight", "camera"] if camera else ["weight"]
    pace = Pace(speed, origin=origin_t, parties=names) if sim else None
    pipeline = WeightPipeline(slot_signals(slots), calibrations, sps=sps, config=cfg.signals)
    inbox = Inbox(names)
    weight = WeightWorker(source, pipeline, inbox, health=health, pace=pace, finite=sim)
    windower = Windower(
        cfg.unit.bay, {s.slot: s.unit_grams for s in slots}, initial_units=context_units
    )
    origin = Origin(cfg.unit.store, cfg.unit.bay, {s.slot: s.sku for s in slots})
    decisions = DecisionWorker(
        inbox,
        windower,
        build_decider(cfg.model, health=health),
        book,
        origin,
        agent.emit,
        health=health,
        tick_s=SIM_TICK_S if sim else None,
        skip_through=resumed,
        blind=WeightOnlyDecider(),
        watch=BundleWatch(cfg.model, health=health, every_s=cfg.ota.watch_poll_s),
        stock_file=stock_file,
        reports=LevelReports(cfg.stock.report_interval_s, after=origin_t),
        resume_t=origin_t,
        recount_dir=data_dir,
        on_committed=keeper.committed if sim else None,
        on_done=keeper.done if sim else None,
        shadow=agent.ota.shadow if agent.ota is not None else None,
        latency=agent.ota.latency if agent.ota is not None else None,
    )
    out = Sensing(
        inbox,
        weight,
        decisions,
        run=run,
        resumed_through=resumed,
        resumed_at=origin_t,
        note=note,
        played_out=played,
    )
    agent.add_worker("weight", weight.run)
    if camera and sim != (camera_config(cfg).source == "sim"):
        log.warning(
            "load cells from %s but camera from %s: their clocks differ, windows may not line up",
            lc.source,
            camera_config(cfg).source,
        )
    if camera:
        out.camera = _camera_feed(
            cfg, inbox, health, pace, run, n_slots=len(slots), stop=agent.stop_event
        )
        agent.add_worker("camera", out.camera.run)
    agent.add_worker("decisions", decisions.run)
    if note:
        log.info("%s", note)
    return out


def _resume_point(
    agent: Agent, mark_file: Path, sim_run: dict[str, Any]
) -> tuple[int, float, str, bool]:
    """``(episode, sensor time, what to tell the user, played out)`` a sim unit goes on from.

    The same run (scenario, seed, hours) goes on after the last episode committed (the
    buffer's newest event or the sim mark, whichever is further); another run, or the
    first, starts at the beginning.
    """
    what = f"{sim_run['scenario']} seed {sim_run['seed']}, {sim_run['hours']:g} h"
    mark = load_sim_mark(mark_file)
    episode, t = last_committed(agent)
    if mark is not None and mark.run != sim_run:
        was = mark.run
        return (
            0,
            0.0,
            f"sim: playing {what} from the start (this data folder held "
            f"{was.get('scenario')} seed {was.get('seed')}, {was.get('hours')} h)",
            False,
        )
    if mark is not None and mark.done:
        return (
            max(episode, mark.episode),
            max(t, mark.mono_time),
            f"sim: {what} was already played to the end in this data folder; nothing to do "
            "(another seed, --sim-hours or data folder plays a new day)",
            True,
        )
    if mark is not None:
        episode, t = max(episode, mark.episode), max(t, mark.mono_time)
    if episode or t:
        return (
            episode,
            t,
            f"sim: resuming {what} after episode {episode} (t={t:.1f} s); "
            "the day up to there is replayed unpaced and not sent again",
            False,
        )
    return 0, 0.0, f"sim: playing {what} from the start", False


class _MarkKeeper:
    """Keeps the sim mark beside the buffer: after every commit, and once the day is done."""

    def __init__(self, path: Path, sim_run: dict[str, Any], agent: Agent) -> None:
        self.path, self.run, self.agent = path, sim_run, agent
        self.episode, self.mono_time = 0, 0.0

    def committed(self, episode: int, mono_time: float) -> None:
        self.episode, self.mono_time = episode, max(self.mono_time, mono_time)
        save_sim_mark(self.path, SimMark(self.run, self.episode, self.mono_time))

    def done(self) -> None:
        save_sim_mark(self.path, SimMark(self.run, self.episode, self.mono_time, done=True))
        self.agent.finish()


def hardware_source(cfg: Config, health: Health) -> BlockSource:
    lc = cfg.loadcells
    if lc.source == "hx711":
        from firmware_bridge.gpio_source import GpioLoadCells

        def gpio(stop: threading.Event) -> Iterable[ReadingBlock]:
            cells = GpioLoadCells(lc.hx711, sps=lc.sps, ready_timeout=lc.read_timeout_s)
            try:
                yield from cells.blocks(BLOCK_S)
            finally:
                cells.close()

        return gpio

    from edge.workers.link import LinkReporter
    from firmware_bridge.serial_link import SerialLoadCells

    def serial(stop: threading.Event) -> Iterable[ReadingBlock]:
        link = SerialLoadCells(lc.serial_port, baud=lc.serial_baud, read_timeout=lc.read_timeout_s)
        reporter = LinkReporter(health)

        def until() -> bool:  # after every read: the link's health, even while it is silent
            st = link.stats
            reporter.report(
                link.link_health(),
                {
                    **st.decoder.as_dict(),
                    "disconnects": st.disconnects,
                    "reconnect_lost_estimated": st.reconnect_lost_estimated,
                },
            )
            return stop.is_set()

        try:
            yield from link.blocks(BLOCK_S, until=until)
        finally:
            link.close()

    return serial


def _camera_feed(
    cfg: Config,
    inbox: Inbox,
    health: Health,
    pace: Pace | None,
    run: SimRun | None,
    *,
    n_slots: int,
    stop: threading.Event,
) -> CameraFeed:
    from edge.camera.registry import make_source
    from edge.camera.worker import CameraWorker

    cam = camera_config(cfg)
    sim = cam.source == "sim"
    if sim and not cam.zones:
        cam = cam.model_copy(update={"default_slots": n_slots})
    visits = run.visits if (sim and run is not None) else []
    zones = cam.zone_specs()

    def make() -> FrameSource:
        if not sim or run is None:
            return make_source(cam, visits=visits, zones=zones)
        from edge.camera.sim import SimulatedSource

        return SimulatedSource(
            visits,
            zones=zones,
            width=cam.width,
            height=cam.height,
            fps=cam.fps,
            seed=cam.sim_seed,
            duration_s=run.duration_s,
            shadows=cam.sim_shadows,
            flicker=cam.sim_flicker,
            noise=cam.sim_noise,
        )

    def pause(seconds: float) -> None:
        stop.wait(seconds)  # a stop request cuts a reconnect backoff short

    frames_total = int(run.duration_s * cam.fps) if (sim and run is not None) else None
    worker = CameraWorker.from_config(cam, make, sleep=pause)
    return CameraFeed(
        worker, inbox, health=health, pace=pace if sim else None, frames_total=frames_total
    )
