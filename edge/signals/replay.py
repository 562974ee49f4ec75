"""The signal path over a simulated run: calibrate like staff would, then detect.

:func:`simulated_calibration` runs the two-point calibration on what the simulated
cells read empty and with a known weight (the pipeline never sees the simulator's
true scales). :func:`detect_changes` replays a :class:`~firmware_bridge.sim.twin.SimRun`
through a :class:`WeightPipeline` — the convenience the demo and the benchmarks use.
"""

from __future__ import annotations

from edge.signals.calibration import ChannelCalibration, two_point
from edge.signals.config import SignalsConfig
from edge.signals.pipeline import SlotSignal, WeightPipeline
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import Scenario
from firmware_bridge.sim.twin import SimRun
from models.types import WeightChange


def simulated_calibration(
    sim: LoadCellSim, known_grams: float = 1000.0
) -> dict[int, ChannelCalibration]:
    """Two-point calibration of every slot channel from the simulated cells' readings."""
    empty, loaded = sim.calibration_blocks(known_grams)
    return {
        s.channel: two_point(
            s.channel,
            empty.counts[:, s.channel],
            loaded.counts[:, s.channel],
            known_grams,
            zero_valid=empty.valid[:, s.channel],
            loaded_valid=loaded.valid[:, s.channel],
        )
        for s in sim.sc.slots
    }


def pipeline_for(
    scenario: Scenario,
    calibrations: dict[int, ChannelCalibration],
    config: SignalsConfig | None = None,
) -> WeightPipeline:
    """A :class:`WeightPipeline` for the scenario's bay."""
    slots = [SlotSignal(s.slot, s.channel, s.unit_grams) for s in scenario.slots]
    return WeightPipeline(slots, calibrations, sps=scenario.sps, config=config)


def detect_changes(
    run: SimRun,
    scenario: Scenario,
    *,
    config: SignalsConfig | None = None,
    block_s: float = 1.0,
    known_grams: float = 1000.0,
) -> list[WeightChange]:
    """Every weight change the signal path finds in a simulated run."""
    sim = LoadCellSim(run, scenario, run.seed)
    pipe = pipeline_for(scenario, simulated_calibration(sim, known_grams), config)
    return pipe.run(sim.blocks(block_s))
