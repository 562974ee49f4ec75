"""The store twin: a seeded simulation of one shelf bay and its shoppers.

Products with unit weights, shoppers with intents, staff restocking, HX711 raw
counts with noise, creep, drift, vibration and faults. Workflow:
:func:`~firmware_bridge.sim.scenario.load_scenario` reads a scenario (parameters,
no seed); :class:`~firmware_bridge.sim.twin.StoreTwin` plans a run for a seed
(episodes, zone visits, stock changes: :mod:`firmware_bridge.sim.truth`);
:class:`~firmware_bridge.sim.loadcell.LoadCellSim` turns the run into raw
:class:`~models.types.ReadingBlock` s; :mod:`firmware_bridge.sim.store` writes counts
and truth side by side (``shelfsense sim run``).
"""
