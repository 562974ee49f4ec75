"""The HTTP API of the cloud: :func:`create_app` builds it from settings."""

from cloud.api.app import create_app

__all__ = ["create_app"]
