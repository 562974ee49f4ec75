"""The ``shelfsense`` command: one entry point dispatching to each part's subcommands."""

__version__ = "0.1.0"
