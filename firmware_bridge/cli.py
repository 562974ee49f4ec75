"""``shelfsense sim …``: the simulated shelf, in process or as the MCU on a pseudo-terminal.

Other parts add their own ``sim`` subcommands through :func:`sim_subcommands`.
"""

from __future__ import annotations

import argparse
from typing import Any

SubParsers = Any  # argparse._SubParsersAction is private


def register(sub: SubParsers) -> None:
    """Add ``sim`` and its subcommands to the top-level parser."""
    sim = sub.add_parser("sim", help="the simulated shelf (store twin)")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True)
    sim.set_defaults(_subcommands=sim_sub)


def sim_subcommands(sub: SubParsers) -> SubParsers:
    """The subparsers of ``sim``, so other parts can add ``sim <name>`` commands."""
    parser: argparse.ArgumentParser = sub.choices["sim"]
    return parser.get_default("_subcommands")
