"""``shelfsense sim …``: the simulated shelf, in process or as the MCU on a pseudo-terminal.

``sim run`` plans a run of a scenario and writes raw counts, ground truth and the
scenario into a folder; ``sim serial`` streams a scenario's counts as the MCU would,
on a pseudo-terminal, until Ctrl-C; ``sim scenarios`` lists the shipped scenarios.
Other parts add their own ``sim`` subcommands through :func:`sim_subcommands`.
Handlers import the simulator lazily, so the CLI starts without numpy work.
"""

from __future__ import annotations

import argparse
from typing import Any

SubParsers = Any  # argparse._SubParsersAction is private


def register(sub: SubParsers) -> None:
    """Add ``sim`` and its subcommands to the top-level parser."""
    sim = sub.add_parser("sim", help="the simulated shelf (store twin)")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True)
    sim.set_defaults(_subcommands=sim_sub)

    run = sim_sub.add_parser("run", help="simulate a run; write raw counts and ground truth")
    _scenario_args(run)
    run.add_argument("--duration", type=float, default=600.0, help="simulated seconds")
    run.add_argument("--out", required=True, help="folder to write into")
    run.set_defaults(func=_run)

    serial = sim_sub.add_parser("serial", help="pose as the MCU on a pseudo-terminal")
    _scenario_args(serial)
    serial.add_argument(
        "--duration", type=float, default=86_400.0, help="simulated seconds before it stops"
    )
    serial.add_argument(
        "--fast", action="store_true", help="send as fast as the reader takes (not real time)"
    )
    serial.set_defaults(func=_serial)

    listing = sim_sub.add_parser("scenarios", help="list the shipped scenarios")
    listing.set_defaults(func=_scenarios)


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="quiet", help="shipped scenario name or TOML path")
    p.add_argument("--seed", type=int, default=1, help="seed of the run")


def _run(args: argparse.Namespace) -> int:
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.store import save_run
    from firmware_bridge.sim.twin import StoreTwin

    sc = load_scenario(args.scenario)
    run = StoreTwin(sc, args.seed).simulate(args.duration)
    out = save_run(args.out, run, sc)
    kinds: dict[str, int] = {}
    for c in run.changes:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    print(
        f"{sc.name} seed {run.seed}: {args.duration:.0f} s, {sc.channels} channels at {sc.sps} SPS, "
        f"{len(run.episodes)} episodes, changes: {summary}"
    )
    print(f"wrote {out}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serial(args: argparse.Namespace) -> int:
    import signal

    from firmware_bridge.pty_mcu import PtyMcu
    from firmware_bridge.sim.loadcell import LoadCellSim
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.twin import StoreTwin

    sc = load_scenario(args.scenario)
    run = StoreTwin(sc, args.seed).simulate(args.duration)
    blocks = LoadCellSim(run, sc, run.seed).blocks(1.0)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager stops it like Ctrl-C
    with PtyMcu(blocks, realtime=not args.fast, sps=sc.sps) as mcu:
        print(mcu.path, flush=True)
        try:
            while not mcu.wait_done(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
        error = getattr(mcu, "error", None)
    if error is not None:
        raise error
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from firmware_bridge.sim.scenario import load_scenario, shipped_scenarios

    for name in shipped_scenarios():
        sc = load_scenario(name)
        print(f"{name:10s} {len(sc.slots):2d} slots, {sc.sps} SPS  {sc.description}")
    return 0


def sim_subcommands(sub: SubParsers) -> SubParsers:
    """The subparsers of ``sim``, so other parts can add ``sim <name>`` commands."""
    parser: argparse.ArgumentParser = sub.choices["sim"]
    return parser.get_default("_subcommands")
