"""``shelfsense``: the command line of every part.

Each part owns its subcommands in a ``cli`` module with a
``register(subparsers)`` function. Those modules import only the standard library
at top level, so ``shelfsense edge …`` on a Pi never imports the cloud's training
stack; heavy imports happen inside the handler that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from models import logs
from shelfsense import __version__

# Explicit registry: a part whose cli module fails to import is an error, not a skip.
PARTS: tuple[str, ...] = (
    "shelfsense.demo",
    "firmware_bridge.cli",
    "edge.dataset",
    "edge.cli",
    "cloud.cli",
    "provisioning.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser tree per part."""
    parser = argparse.ArgumentParser(
        prog="shelfsense", description="Shelf sensing at the edge: units, cloud and fleet."
    )
    parser.add_argument("--version", action="version", version=f"shelfsense {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--log-json", action="store_true", help=f"log JSON lines (also {logs.JSON_ENV}=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in PARTS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.verbose, json_flag=args.log_json)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # the reader went away (`shelfsense edge status | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the CLI reports every failure as one line
        if args.verbose:
            raise
        print(f"shelfsense: error: {err}", file=sys.stderr)
        return 2
