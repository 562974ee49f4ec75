"""The agent on the Pi: sensing, signals, windows, local decisions, buffer, sync, OTA."""

from importlib.metadata import PackageNotFoundError, version

try:
    AGENT_VERSION: str = version("shelfsense")
    """This agent's version: a bundle's ``min_agent_version`` is checked against it."""
except PackageNotFoundError:  # run from a source tree without an install
    AGENT_VERSION = "0.0.0"
