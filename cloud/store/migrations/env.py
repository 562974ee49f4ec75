"""Alembic environment: runs on the connection handed in by ``cloud.store.engine.migrate``."""

from __future__ import annotations

from alembic import context

from cloud.store.tables import metadata


def run_migrations_online() -> None:
    """Migrate over the connection in ``config.attributes`` (there is no offline mode)."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through cloud.store.engine.migrate only")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
