"""Errors of the weight hardware boundary."""


class BridgeError(Exception):
    """Base of every error raised by firmware_bridge."""
