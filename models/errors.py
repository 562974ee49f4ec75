"""Errors of the shared model contract (bundles, datasets, runtimes)."""


class ModelError(Exception):
    """Base of every error raised by ``models``."""


class BundleError(ModelError, ValueError):
    """A model bundle that must not be used; the message says why."""


class BackendError(ModelError, RuntimeError):
    """An inference backend that cannot be loaded or run (missing package, bad model)."""
