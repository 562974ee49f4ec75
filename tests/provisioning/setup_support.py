"""A unit in setup mode for tests: the setup server on loopback over a bench bay.

The bench bay stands in for the shelf's load cells (a test puts weights on it as a
person would); the unit's config, data folder and outbox are in the test's tmp dir.
With ``serial=True`` the bay is served as the MCU on a pty, setup reads it through the
serial link as the unit would, and *Start the unit* starts the real agent (weight
path, rules, HTTP sync) on the same link, as the service would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.agent import Agent
from edge.config import Config, load_config
from edge.workers.build import add_sensing
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.sim.bench import SimBay
from models.types import ReadingBlock
from provisioning.calibrate import Feed, Source, config_source
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
    agents: list[Agent]


def write_config(tmp_path: Path, port: str | None = None) -> Path:
    slots = "".join(
        f'[[slots]]\nslot = {s}\nchannel = {c}\nsku = "{sku}"\nunit_grams = 250\n\n'
        for s, c, sku in SLOTS
    )
    cells = f'[loadcells]\nsource = "serial"\nserial_port = "{port}"\n\n' if port else ""
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[unit]\ndata_dir = "{tmp_path / "var"}"\n\n' + cells + slots)
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
    tmp_path: Path, *, cloud: str | None = None, linger_s: float = 30.0, serial: bool = False
) -> Iterator[SetupUnitUnderTest]:
    """Setup mode on a free loopback port until the test ends (or staff finish it)."""
    bench = SimBay(4, sps=80, seed=3)
    agents: list[Agent] = []
    with ExitStack() as stack:
        if serial:
            mcu = PtyMcu(bench.blocks(BLOCK_S), realtime=True, sps=80, record=False)
            config = write_config(tmp_path, stack.enter_context(mcu).path)
            cfg = load_config(config)
            feed = Feed(config_source(cfg))
        else:
            config = write_config(tmp_path)
            cfg = load_config(config)
            feed = Feed(bench_source(bench))

        def start_agent() -> None:  # what `systemctl start shelfsense-edge` does on a unit
            agent = Agent(load_config(config))
            add_sensing(agent, camera=False)
            agent.start()
            agents.append(agent)

        def stop_agents() -> None:
            for agent in agents:
                agent.stop()

        stack.callback(stop_agents)
        unit = SetupUnit(
            cfg,
            feed,
            config_path=config,
            cloud=cloud,
            limits=Limits(sps=80, window_s=1.0, max_wait_s=10.0),
            start_agent=start_agent,
        )
        stack.callback(lambda: unit.feed.close())
        server = SetupServer(("127.0.0.1", 0), SetupSession(), unit, linger_s=linger_s)
        stopped: list[str] = []
        thread = threading.Thread(target=lambda: stopped.append(server.run()), daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(server.stop)
        yield SetupUnitUnderTest(
            server.url, server.session, unit, server, bench, config, cfg, stopped, agents
        )
