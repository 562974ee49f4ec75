"""What every ``shelfsense cloud …`` and ``fleet …`` command shares: which store and settings.

:func:`db_args` adds ``--config`` and ``--database-url`` to a command; its handler then
gets the settings with :func:`settings_of` and the migrated store with
:func:`open_store_of`. The command modules (``service_cli``, ``fleet_cli``,
``train_cli``, ``claims_cli``, ``ota_cli``) import this module and nothing of each other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SubParsers = Any  # argparse._SubParsersAction is private


def db_args(p: argparse.ArgumentParser) -> None:
    """``--config`` and ``--database-url``: which cloud store a command works on."""
    p.add_argument("--config", type=Path, default=None, help="cloud settings file (TOML)")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL (overrides settings)")


def settings_of(args: argparse.Namespace) -> Any:
    """The cloud settings of a command: ``--config`` file, env, ``--database-url``."""
    from cloud.settings import build_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return build_settings(args.config, **overrides)


def open_store_of(args: argparse.Namespace) -> Any:
    """The store that ``db_args`` name (migrated to the newest schema)."""
    from cloud.store import open_store

    return open_store(settings_of(args).database_url, pool_size=2)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (dates and the like as strings)."""
    print(json.dumps(obj, indent=2, default=str))
