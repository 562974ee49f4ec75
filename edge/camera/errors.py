"""Errors of the camera stage of the edge agent."""

from __future__ import annotations

from edge.errors import ConfigError, EdgeError


class CameraError(EdgeError):
    """Base of every error raised by the camera stage."""


class ZoneError(ConfigError):
    """A camera zone polygon that cannot be used; the message names the zone."""


class CameraUnavailableError(CameraError, RuntimeError):
    """The selected frame source cannot run here (missing package, no device)."""


class CameraDisconnectedError(CameraError, ConnectionError):
    """The camera went away or stopped answering; the worker reconnects."""


class FrameFormatError(CameraError, ValueError):
    """A frame of the wrong size, type or shape came out of a source."""
