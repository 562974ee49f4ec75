"""A throwaway PostgreSQL schema on the server at 127.0.0.1:5432 (user postgres, db test).

Tests that need it skip when the server is missing, unless
``SHELFSENSE_REQUIRE_PG=1`` (as CI sets), in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_DSN = os.environ.get("SHELFSENSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_required() -> bool:
    """True when a missing PostgreSQL must fail the tests rather than skip them."""
    return os.environ.get("SHELFSENSE_REQUIRE_PG", "") not in ("", "0", "false")


@contextmanager
def pg_schema() -> Iterator[str]:
    """Create a fresh schema, yield an SQLAlchemy URL whose search_path is that schema."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - dev extra installs it
        if pg_required():
            raise
        pytest.skip("psycopg not installed")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        if pg_required():
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {err}")
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        base = PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            yield f"{base}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
