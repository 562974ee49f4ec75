"""A unit in setup mode for tests: the setup server on loopback over a bench bay.

The bench bay stands in for the shelf's load cells (a test puts weights on it as a
person would); the unit's config, data folder and outbox are in the test's tmp dir.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config, load_config
from firmware_bridge.sim.bench import SimBay
from models.types import ReadingBlock
from provisioning.calibrate import Feed, Source
from provisioning.setup_server import SetupServer
from provisioning.setup_session import SetupSession
from provisioning.setup_unit import SetupUnit
from provisioning.wizard import Limits

SLOTS = [(0, 0, "SKU-A"), (1, 1, "SKU-B")]
BLOCK_S = 0.05


@dataclass
class SetupUnitUnderTest:
    """The running setup mode: its URL, PIN, parts, and why it stopped once it has."""

    url: str
    session: SetupSession
    unit: SetupUnit
    server: SetupServer
    bench: SimBay
    config: Path
    cfg: Config
    stopped: list[str]


def write_config(tmp_path: Path) -> Path:
    slots = "".join(
        f'[[slots]]\nslot = {s}\nchannel = {c}\nsku = "{sku}"\nunit_grams = 250\n\n'
        for s, c, sku in SLOTS
    )
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[unit]\ndata_dir = "{tmp_path / "var"}"\n\n' + slots)
    return cfg


def bench_source(bench: SimBay) -> Source:
    """The bay's blocks, paced as the load cells deliver them."""

    def source(stop: threading.Event) -> Iterable[ReadingBlock]:
        for block in bench.blocks(BLOCK_S):
            if stop.wait(BLOCK_S):
                return
            yield block

    return source


@contextmanager
def setup_mode(
    tmp_path: Path, *, cloud: str | None = None, linger_s: float = 30.0
) -> Iterator[SetupUnitUnderTest]:
    """Setup mode on a free loopback port until the test ends (or staff finish it)."""
    bench = SimBay(4, sps=80, seed=3)
    config = write_config(tmp_path)
    cfg = load_config(config)
    feed = Feed(bench_source(bench))
    unit = SetupUnit(
        cfg,
        feed,
        config_path=config,
        cloud=cloud,
        limits=Limits(sps=80, window_s=1.0, max_wait_s=10.0),
    )
    session = SetupSession()
    server = SetupServer(("127.0.0.1", 0), session, unit, linger_s=linger_s)
    stopped: list[str] = []
    thread = threading.Thread(target=lambda: stopped.append(server.run()), daemon=True)
    thread.start()
    try:
        yield SetupUnitUnderTest(server.url, session, unit, server, bench, config, cfg, stopped)
    finally:
        server.stop()
        thread.join(timeout=10)
        feed.close()
