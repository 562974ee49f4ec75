"""``shelfsense cloud train``: registered under the ``cloud`` command group."""

from __future__ import annotations

from typing import Any


def register(cloud_sub: Any) -> None:
    """Add ``train`` to the ``cloud`` subcommands."""
