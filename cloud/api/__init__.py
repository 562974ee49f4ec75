"""The HTTP API of the cloud: :func:`create_app` builds it from settings.

``create_app`` is imported on first use, so importing a leaf module of this package
(``cloud.api.services``, ``cloud.api.errors``…) does not build the whole app module,
which imports the console, which imports those leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cloud.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
