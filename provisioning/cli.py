"""``shelfsense provision claim``: put a unit into service with a claim code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

CONFIG_ENV = "SHELFSENSE_CONFIG"


def register(sub: Any) -> None:
    """Add ``provision`` and its subcommands."""
    prov = sub.add_parser("provision", help="put a unit into service")
    ps = prov.add_subparsers(dest="provision_command", metavar="PROVCOMMAND", required=True)
    p = ps.add_parser("claim", help="claim this unit's identity with a code from the operator")
    p.add_argument("code", help="the claim code, e.g. 7KQ2M-XB9D4 (hyphen and case optional)")
    p.add_argument("--cloud", required=True, help="the cloud's address, e.g. https://cloud.example")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"unit config to update (default ${CONFIG_ENV}; none: only the identity is written)",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="where the identity goes (default: config's)"
    )
    p.add_argument("--name", default="", help="a name for the unit, shown to operators")
    p.add_argument("--owner", default=None, help="user that will own the files (the service's)")
    p.set_defaults(func=cmd_claim)


def cmd_claim(args: argparse.Namespace) -> int:
    """Claim; prints what happened, or one line saying what to do."""
    from edge.config import load_config
    from provisioning.claim import ClaimError, claim

    config = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = load_config(config if config and config.exists() else None).unit.data_dir
    try:
        result = claim(
            args.code, args.cloud, data_dir, config=config, name=args.name, owner=args.owner
        )
    except ClaimError as err:
        print(f"claim failed: {err}", file=sys.stderr)
        return 1
    for path in result.files:
        print(f"  wrote {path}")
    return 0
