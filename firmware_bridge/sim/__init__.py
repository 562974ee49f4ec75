"""The store twin: a seeded simulation of one shelf bay and its shoppers.

Products with unit weights, shoppers with intents, staff restocking, HX711 raw
counts with noise, creep, drift, vibration and faults. Scenarios are parameter
files; ground truth (:mod:`firmware_bridge.sim.truth`) is written beside the data.
"""
