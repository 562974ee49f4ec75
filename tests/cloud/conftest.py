"""Fixtures of the cloud tests: settings on a fresh SQLite file or PostgreSQL schema, a live app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.settings import CloudSettings, build_settings
from tests.cloud.support import Live, serve


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> CloudSettings:
    """Settings on a fresh SQLite file, limits off, a small pool."""
    return build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, db_pool_size=5
    )


@pytest.fixture
def live(sqlite_settings: CloudSettings) -> Iterator[Live]:
    """The app on SQLite under uvicorn on loopback."""
    with serve(sqlite_settings) as running:
        yield running


@pytest.fixture
def pg_live(pg_url: str) -> Iterator[Live]:
    """The app on a fresh PostgreSQL schema under uvicorn on loopback."""
    with serve(build_settings(database_url=pg_url, rate_per_s=0, db_pool_size=5)) as running:
        yield running
