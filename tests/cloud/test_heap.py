"""A serving process freezes its start-up heap and collects young objects less often."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cloud.heap import YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, weakref
from cloud.api.app import app_from_env
before = gc.get_threshold()[0]
app_from_env()
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after start-up: the collector must still free it
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"before": before, "after": gc.get_threshold()[0],
                  "frozen": gc.get_freeze_count(), "cycle_freed": gone() is None}))
"""


def test_a_worker_made_by_the_factory_freezes_its_heap_and_still_collects_cycles(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SHELFSENSE_CLOUD_DATABASE_URL": f"sqlite:///{tmp_path}/cloud.db",
    }
    env.pop("SHELFSENSE_CLOUD_CONFIG", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] == 700  # CPython's default: the probe starts from it
    assert got["after"] == YOUNG_THRESHOLD
    assert got["frozen"] > 10_000  # the app, its schemas and pools: never walked again
    assert got["cycle_freed"]
