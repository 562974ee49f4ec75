"""Edge signal processing: raw load-cell counts to settled, calibrated weight changes.

Workflow: calibrate each channel (:mod:`edge.signals.calibration`: tare, two-point,
atomic JSON store), then feed :class:`ReadingBlock` s to a :class:`WeightPipeline`
(decimate and filter, settle detection with zero tracking) and collect
:class:`~models.types.WeightChange` s. All classes here are pure: values in, values
out; only :class:`CalibrationStore` touches the disk. :mod:`edge.signals.replay`
runs the pipeline over a simulated run.
"""

from edge.signals.calibration import CalibrationStore, ChannelCalibration, tare, two_point
from edge.signals.config import SignalsConfig
from edge.signals.pipeline import SlotSignal, WeightPipeline, slot_signals, whole_units

__all__ = [
    "CalibrationStore",
    "ChannelCalibration",
    "SignalsConfig",
    "SlotSignal",
    "WeightPipeline",
    "slot_signals",
    "tare",
    "two_point",
    "whole_units",
]
