"""Shared fixtures: real parts (Mosquitto, PostgreSQL) and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.mosquitto import Broker, mosquitto_binary, run_mosquitto
from tests.support.ordering import reorder
from tests.support.postgres import pg_schema

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# No timing assertions in tests: on a loaded machine an example may take longer than
# hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile("shelfsense", deadline=None)
settings.load_profile("shelfsense")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto broker on a free loopback port, for one test."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed (make test installs it with apt)")
    with run_mosquitto(tmp_path) as broker:
        yield broker


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An SQLAlchemy URL to a fresh schema on the test PostgreSQL."""
    with pg_schema() as url:
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long tests (``@pytest.mark.slow(seconds=…)``) start first, spread over the workers."""
    reorder(config, items)
