"""The cloud's database: tables, engine with dialect pragmas, Alembic migrations.

:func:`open_store` makes an engine for a URL (SQLite file in WAL mode, or
PostgreSQL through psycopg 3) and brings the schema to the newest migration.
"""

from cloud.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
