"""A unit's OTA client in its own process, to be killed with ``kill -9`` in any OTA state.

``python -m tests.edge.ota_agent_child BASE_URL DATA_DIR KEY_PEM VERSION [shadow]`` follows
the desired ``VERSION`` (with ``shadow``: shadowing it on 3 windows first, the candidate
a stand-in that says ``none``) with the bundle already in ``DATA_DIR/models/current`` and the
trusted root ``DATA_DIR/tuf-root.json``; it prints each state it reports, and
``watching`` once it switched, one per line, and then keeps watching until killed.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from edge.events import WindowDecision
from edge.health import Health
from edge.ota.fetch import TufFetcher
from edge.ota.slots import Slots
from edge.ota.state import OtaSettings
from edge.ota.worker import OtaWorker
from models.bundle import load_public_key
from models.wire_fleet import OtaReport


def say(report: OtaReport) -> None:
    print(report.state, flush=True)


class SaysNone:
    """A stand-in candidate for the shadow run: ``none`` for every window."""

    def decide(self, windows: object) -> list[WindowDecision]:
        return [WindowDecision(None, 0.0, (("none", 1.0),)) for _ in windows]  # type: ignore[attr-defined]


def main() -> None:
    """Follow VERSION until killed."""
    base_url, data, pem, version = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    worker = OtaWorker(
        Slots.open(data / "models" / "current"),
        TufFetcher(base_url, data / "tuf", trusted_root=(data / "tuf-root.json").read_bytes()),
        state_file=data / "ota.json",
        trusted_keys=[load_public_key(pem.read_bytes())],
        agent_version="0.1.0",
        report=say,
        health=Health(),
        settings=OtaSettings(watch_s=3600),
        load=lambda path: SaysNone(),
    )
    worker.boot()
    worker.want(int(version), 3 if sys.argv[5:] == ["shadow"] else None)
    worker.step()
    if worker.state.phase == "watching":
        print("watching", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
