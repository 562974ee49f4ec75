"""Property-based fuzzing of MQTT ingest with a live worker (modest size; large in ``make bench``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.store import open_store
from tests.cloud.mqtt_fuzz import run_fuzz
from tests.support.mosquitto import Broker

EXAMPLES = int(os.environ.get("SHELFSENSE_FUZZ_EXAMPLES", "60"))


@pytest.mark.mqtt
def test_whatever_one_unit_sends_another_is_served(mosquitto: Broker, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cloud.db'}", pool_size=4)
    try:
        report = run_fuzz(mosquitto, store, EXAMPLES)
    finally:
        store.dispose()
    assert report.examples >= EXAMPLES
    assert report.refused > 0 and report.worker_errors == 0
