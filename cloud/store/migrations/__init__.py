"""Alembic migrations of the cloud store, run by :func:`cloud.store.engine.migrate`."""
