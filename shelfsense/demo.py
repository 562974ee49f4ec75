"""``shelfsense demo``: the whole loop on the simulator."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="run the whole loop on the simulator")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    raise NotImplementedError("demo")
