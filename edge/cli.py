"""``shelfsense edge …``: run the agent, check its config, show its status.

- ``edge run --config unit.toml`` runs the agent until SIGTERM, with its weight,
  camera and decision workers built from the config (``--speed`` and ``--sim-hours``
  drive the store twin in sim mode and the agent exits once the simulated hours are
  decided and sent; a restarted sim unit says where it resumes; ``--no-camera`` leaves
  the camera out);
  ``--check-config`` only validates (errors name the file and key; exit 2).
- ``edge status [--config unit.toml] [--json]`` reads the status file and the buffer.
- ``edge watch [--config unit.toml]`` shows the same live (rich), with each slot's
  weight and units, who the camera sees and the newest decisions (:mod:`edge.watch`).
- ``edge recount --slot N --units U`` queues a staff count of one slot for the agent
  (:mod:`edge.recount`): the slot's count, foreign items and flags are reset.
- ``edge install-model PATH`` checks that PATH is a model bundle folder; with a trusted
  key (``--trusted-key`` or the config's ``model.trusted_key``) it verifies it, and with
  ``--config`` installs it through the A/B slots of ``model.bundle_dir`` (copy into the
  slot not in use, verify, switch the pointer; the bundle replaced is kept), refusing
  an older version than the one in use unless ``--allow-downgrade``.

Only the standard library is imported at top level; handlers import what they need.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_CONFIG = 2


def register(sub: Any) -> None:
    """Add ``edge`` and its subcommands to the top-level parser."""
    edge = sub.add_parser("edge", help="the agent on the unit")
    edge_sub = edge.add_subparsers(dest="edge_command", metavar="EDGECOMMAND", required=True)

    run = edge_sub.add_parser("run", help="run the agent (until SIGTERM)")
    run.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    run.add_argument(
        "--check-config", action="store_true", help="validate the config and identity, then exit"
    )
    run.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="sim mode: simulated seconds per wall second (0: as fast as possible)",
    )
    run.add_argument(
        "--sim-hours", type=float, default=8.0, help="sim mode: hours of store traffic to play"
    )
    run.add_argument(
        "--no-camera", action="store_true", help="run without the camera worker (weight only)"
    )
    run.set_defaults(func=cmd_run)

    status = edge_sub.add_parser("status", help="what the unit is doing (from disk)")
    status.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=cmd_status)

    watch = edge_sub.add_parser("watch", help="a live view: slots, camera, decisions, sync")
    watch.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    watch.add_argument(
        "--every", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    watch.add_argument("--once", action="store_true", help="print the view once and exit")
    watch.set_defaults(func=cmd_watch)

    rec = edge_sub.add_parser(
        "recount", help="staff counted a slot: reset its units (applied by the running agent)"
    )
    rec.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    rec.add_argument("--slot", type=int, required=True, help="slot index on the bay")
    rec.add_argument("--units", type=int, required=True, help="units of its SKU counted on it")
    rec.set_defaults(func=cmd_recount)

    inst = edge_sub.add_parser(
        "install-model", help="check a model bundle folder and install it when it verifies"
    )
    inst.add_argument("path", type=Path, help="bundle folder (manifest.json inside)")
    inst.add_argument(
        "--trusted-key", type=Path, action="append", default=[], help="public key PEM (repeat)"
    )
    inst.add_argument(
        "--config",
        type=Path,
        default=None,
        help="unit config: install into its model.bundle_dir (key from model.trusted_key)",
    )
    inst.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="install even when the bundle is older than the one in use",
    )
    inst.set_defaults(func=cmd_install_model)


CONFIG_ENV = "SHELFSENSE_CONFIG"
INSTALLED_CONFIG = Path("/etc/shelfsense/unit.toml")


def _load(path: Path | None) -> Any:
    """The config at ``path``, else ``$SHELFSENSE_CONFIG``, else the installed one, else defaults."""
    import os

    from edge.config import load_config

    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and INSTALLED_CONFIG.is_file():
        path = INSTALLED_CONFIG
    return load_config(path)


def _missing(config: Any, where: str) -> list[str]:
    """What a unit with a valid config still lacks to start: slots, calibration."""
    from edge.errors import CalibrationError
    from edge.signals.calibration import CalibrationStore
    from edge.workers.build import CALIBRATION_FILE

    if config.loadcells.source == "sim":
        return []
    if not config.slots:
        return [f"{where}: slots: load cells from {config.loadcells.source} need [[slots]]"]
    store = CalibrationStore(Path(config.unit.data_dir) / CALIBRATION_FILE)
    try:
        have = store.load()
    except CalibrationError as err:
        have, why = {}, str(err)
    else:
        why = ""
    lacking = [s for s in config.slots if s.channel not in have]
    if not lacking:
        return []
    slots = ", ".join(f"slot {s.slot} (channel {s.channel})" for s in lacking)
    out = [f"{where}: calibration: none for {slots}: run `shelfsense provision calibrate`"]
    return out + ([f"  ({why})"] if why and len(lacking) == len(config.slots) else [])


def check(path: Path | None) -> tuple[Any, list[str]]:
    """Validate config (and the identity file when sync is on); returns (config, errors)."""
    from edge.errors import ConfigError
    from edge.sync.identity import IdentityError, load_identity

    try:
        config = _load(path)
    except ConfigError as err:
        return None, str(err).splitlines()
    errors: list[str] = []
    if config.sync.mode != "off":
        ident_path = Path(config.unit.data_dir) / config.sync.identity_file
        try:
            ident = load_identity(ident_path)
        except IdentityError as err:
            errors.append(
                f"{path or '<defaults>'}: sync.identity_file: {err} (a unit gets its identity "
                "with `shelfsense provision claim CODE --cloud URL`)"
            )
        else:
            if ident.device_id != config.unit.device_id:
                errors.append(
                    f"{path or '<defaults>'}: unit.device_id: {config.unit.device_id!r} but "
                    f"{ident_path} is for {ident.device_id!r}"
                )
    errors += _missing(config, str(path or "<defaults>"))
    return config, errors


def cmd_run(args: argparse.Namespace) -> int:
    """``edge run``."""
    config, errors = check(args.config)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print(f"config OK: {args.config or '<defaults>'}")
        print(f"  device   {config.unit.device_id} ({config.unit.store}/{config.unit.bay})")
        print(f"  slots    {len(config.slots)}, load cells from {config.loadcells.source}")
        print(
            f"  buffer   {Path(config.unit.data_dir) / config.buffer.file}"
            f" (cap {config.buffer.max_mb:g} MB, when full: {config.buffer.on_full})"
        )
        target = {
            "http": config.sync.base_url,
            "mqtt": f"{config.sync.mqtt_host}:{config.sync.mqtt_port}",
            "both": f"{config.sync.mqtt_host}:{config.sync.mqtt_port} + {config.sync.base_url}",
            "off": "-",
        }[config.sync.mode]
        print(f"  sync     {config.sync.mode} {target}")
        from edge.workers.build import camera_config

        print(f"  camera   {'off' if args.no_camera else camera_config(config).source}")
        bundle = Path(config.model.bundle_dir) / "manifest.json"
        decider = f"model from {bundle.parent}" if bundle.is_file() else "rules (no bundle)"
        print(f"  decides  {decider}")
        return 0
    if args.speed < 0 or args.sim_hours <= 0:
        print("--speed must be >= 0 and --sim-hours > 0", file=sys.stderr)
        return EXIT_CONFIG
    from edge.agent import Agent
    from edge.errors import CalibrationError
    from edge.workers.build import add_sensing

    agent = Agent(config)
    try:
        sensing = add_sensing(
            agent, speed=args.speed, sim_hours=args.sim_hours, camera=not args.no_camera
        )
    except (CalibrationError, ValueError) as err:
        agent.stop()
        print(f"{args.config or '<defaults>'}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if sensing.note:
        print(sensing.note, flush=True)
    if sensing.played_out:
        agent.stop()
        return 0
    import signal

    # A finished sim stops on its own: a SIGTERM landing after the agent has stopped
    # (while the process exits) is part of the same clean stop, not a kill. The agent
    # handles SIGTERM while it runs and puts this back when it returns; SIG_IGN (unlike
    # a Python handler) stays in force while the interpreter shuts down.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = agent.run()
    if agent.health.get("sim_done") is True:
        left = agent.health.get("buffer_depth")
        sent = (
            "sync is off: they stay in the buffer"
            if agent.sync is None
            else "all sent"
            if not left
            else f"{left} still to send at the next start"
        )
        print(f"sim: played to the end, {sensing.decisions.emitted} events committed ({sent})")
    return code


def cmd_status(args: argparse.Namespace) -> int:
    """``edge status``."""
    from edge.errors import ConfigError
    from edge.status import collect, render_table

    try:
        config = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    status = collect(config)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, default=str))
    else:
        print(render_table(status))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """``edge watch``."""
    from edge.errors import ConfigError
    from edge.watch import watch

    if not 0.1 <= args.every <= 3600:
        print("--every must be between 0.1 and 3600 seconds", file=sys.stderr)
        return EXIT_CONFIG
    try:
        config = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    return watch(config, refresh_s=args.every, once=args.once)


def cmd_recount(args: argparse.Namespace) -> int:
    """``edge recount``: queue a staff count of one slot for the agent."""
    from edge.errors import ConfigError
    from edge.recount import request_recount

    try:
        config = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    known = {s.slot for s in config.slots}
    if known and args.slot not in known:
        have = ", ".join(str(n) for n in sorted(known))
        print(f"slot {args.slot}: not on this bay (slots {have})", file=sys.stderr)
        return EXIT_CONFIG
    try:
        path = request_recount(Path(config.unit.data_dir), args.slot, args.units)
    except (ValueError, OSError) as err:
        print(f"recount not queued: {err}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"recount queued: slot {args.slot} holds {args.units} units ({path})")
    print("the running agent applies it within a second (a stopped one at its next start)")
    return 0


def cmd_install_model(args: argparse.Namespace) -> int:
    """``edge install-model``: check the bundle folder; full verification with keys."""
    from models.bundle import MANIFEST, load_public_key, verify_bundle
    from models.errors import BundleError

    path: Path = args.path
    manifest = path / MANIFEST
    if not path.is_dir() or not manifest.is_file():
        print(f"{path}: not a model bundle folder (no {MANIFEST})", file=sys.stderr)
        return EXIT_CONFIG
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        version = int(data["version"])
    except (ValueError, KeyError, TypeError) as err:
        print(f"{manifest}: no integer version: {err}", file=sys.stderr)
        return EXIT_CONFIG
    key_files = list(args.trusted_key)
    config = None
    if args.config is not None:
        from edge.errors import ConfigError

        try:
            config = _load(args.config)
        except ConfigError as err:
            print(err, file=sys.stderr)
            return EXIT_CONFIG
        if not key_files and config.model.trusted_key is not None:
            key_files.append(Path(config.model.trusted_key))
    if not key_files:
        print(f"bundle version {version} at {path}: looks like a bundle (signature not checked)")
        print("not installed: a bundle is installed only when it verifies under a trusted key")
        return 0
    try:
        keys = [load_public_key(k.read_bytes()) for k in key_files]
        verify_bundle(path, trusted_keys=keys)
    except (BundleError, OSError) as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    print(f"bundle version {version} at {path}: verified")
    if config is None:
        print("not installed: give --config to install it into the unit's model.bundle_dir")
        return 0
    from edge import AGENT_VERSION
    from edge.ota.install import DowngradeError, install_bundle

    dest = Path(config.model.bundle_dir)
    try:
        _, replaced = install_bundle(
            path,
            dest,
            trusted_keys=keys,
            agent_version=AGENT_VERSION,
            allow_downgrade=args.allow_downgrade,
        )
    except (BundleError, DowngradeError, OSError) as err:
        print(f"{dest}: not installed: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if replaced == version:
        print(f"version {version} is already in use at {dest}: nothing to do")
        return 0
    kept = f"; version {replaced} kept as the previous slot" if replaced is not None else ""
    print(f"installed as {dest} (-> {dest.resolve().name}){kept}")
    print("a running agent switches to it within seconds, else from its next start")
    return 0
