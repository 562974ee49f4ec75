"""``shelfsense cloud …`` and ``shelfsense fleet …``: the two command groups, wired.

Each group's commands live in a module of their own, all sharing
:mod:`cloud.cli_common` (store and settings arguments): :mod:`cloud.service_cli`
(serve, migrate, mqtt-ingest, export-labels), :mod:`cloud.train_cli` (train),
:mod:`cloud.fleet_cli` (keys, stores, devices), :mod:`cloud.claims_cli` (claim codes)
and :mod:`cloud.ota_cli` (TUF, models, rollouts). Other parts add ``fleet``
subcommands through :func:`fleet_subcommands`.
"""

from __future__ import annotations

import argparse

from cloud import claims_cli, fleet_cli, ota_cli, service_cli, train_cli
from cloud.cli_common import SubParsers, db_args


def register(sub: SubParsers) -> None:
    """Add the ``cloud`` and ``fleet`` command groups."""
    cloud = sub.add_parser("cloud", help="the cloud service")
    cloud_sub = cloud.add_subparsers(dest="cloud_command", metavar="CLOUDCOMMAND", required=True)
    service_cli.register(cloud_sub)
    train_cli.register(cloud_sub, db_args)

    fleet = sub.add_parser("fleet", help="stores, units, keys")
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="FLEETCOMMAND", required=True)
    fleet.set_defaults(_subcommands=fleet_sub)
    fleet_cli.register(fleet_sub)
    claims_cli.register(fleet_sub, db_args)
    ota_cli.register(fleet_sub, db_args)


def fleet_subcommands(sub: SubParsers) -> SubParsers:
    """The subparsers of ``fleet``, so other parts can add ``fleet <name>`` commands."""
    parser: argparse.ArgumentParser = sub.choices["fleet"]
    return parser.get_default("_subcommands")
