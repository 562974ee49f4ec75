"""Scenario files shipped with the simulator (TOML; see :mod:`firmware_bridge.sim.scenario`)."""
