"""Errors of the edge agent."""


class EdgeError(Exception):
    """Base of every error raised by the edge agent."""


class ConfigError(EdgeError, ValueError):
    """A unit config file that cannot be used; the message names the file and the key."""


class CalibrationError(EdgeError, ValueError):
    """A calibration that cannot be applied (no tare, zero span, unknown channel)."""
