"""``shelfsense provision claim|calibrate|install``: put a unit into service.

- ``claim CODE --cloud URL`` receives the unit's identity with an operator's code;
- ``calibrate`` walks store staff through each slot (empty, known weight, check);
  ``--slot N --tare`` and ``--slot N --known-grams G`` do one step for scripts; the
  calibration is then reported to the cloud (or later by the agent, when offline);
- ``install [--root DIR]`` writes the config, systemd unit, sysusers and udev files;
- ``setup`` serves the setup page on the store network (claim, calibrate, see it
  working from a phone, with the PIN printed here and, once the unit is claimed,
  shown to operators by the cloud) and watches the camera for a claim code's QR,
  until staff finish setup.

The unit config is ``--config``, else ``$SHELFSENSE_CONFIG``, else
``/etc/shelfsense/unit.toml``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

CONFIG_ENV = "SHELFSENSE_CONFIG"
DEFAULT_CONFIG = Path("/etc/shelfsense/unit.toml")


def config_path(arg: Path | None) -> Path:
    """The unit config: the argument, else ``$SHELFSENSE_CONFIG``, else the installed one."""
    if arg is not None:
        return arg
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


def quiet_link_log() -> None:
    """Staff read the wizard's own words for a dead or unplugged channel, not the link's log."""
    import logging

    logging.getLogger("edge.workers.link").setLevel(logging.ERROR)


def register(sub: Any) -> None:
    """Add ``provision`` and its subcommands."""
    prov = sub.add_parser("provision", help="put a unit into service")
    ps = prov.add_subparsers(dest="provision_command", metavar="PROVCOMMAND", required=True)
    p = ps.add_parser("claim", help="claim this unit's identity with a code from the operator")
    p.add_argument("code", help="the claim code, e.g. 7KQ2M-XB9D4 (hyphen and case optional)")
    p.add_argument("--cloud", required=True, help="the cloud's address, e.g. https://cloud.example")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"unit config to update (default ${CONFIG_ENV}; none: only the identity is written)",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="where the identity goes (default: config's)"
    )
    p.add_argument("--name", default="", help="a name for the unit, shown to operators")
    p.add_argument("--owner", default=None, help="user that will own the files (the service's)")
    p.set_defaults(func=cmd_claim)

    c = ps.add_parser("calibrate", help="calibrate the shelf's slots with a known weight")
    c.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    c.add_argument("--slot", type=int, action="append", default=None, help="only this slot")
    c.add_argument("--tare", action="store_true", help="one step: record the empty tray")
    c.add_argument(
        "--known-grams", type=float, default=None, help="one step: the weight now on the slot"
    )
    c.add_argument(
        "--seconds", type=float, default=1.5, help="a steady reading is averaged this long"
    )
    c.add_argument(
        "--max-wait", type=float, default=20.0, help="give up on an unsteady reading after this"
    )
    c.set_defaults(func=cmd_calibrate)

    st = ps.add_parser("setup", help="serve the setup page for a phone (PIN shown here)")
    st.add_argument("--config", type=Path, default=None, help="unit config (TOML)")
    st.add_argument("--cloud", default=None, help="the cloud's address (default: the config's)")
    st.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    st.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    st.add_argument(
        "--minutes", type=float, default=60.0, help="setup mode ends by itself after this long"
    )
    st.add_argument(
        "--no-camera", action="store_true", help="do not watch the camera for a claim QR code"
    )
    st.set_defaults(func=cmd_setup)

    i = ps.add_parser("install", help="install the config, service, user and udev rule")
    i.add_argument("--root", type=Path, default=None, help="install into this folder (no enabling)")
    i.add_argument("--config", type=Path, default=None, help="unit config to install (checked)")
    i.add_argument(
        "--mcu-serial",
        default=None,
        help="the MCU's USB serial number (default: the one plugged in)",
    )
    i.set_defaults(func=cmd_install)


def cmd_claim(args: argparse.Namespace) -> int:
    """Claim; prints what happened, or one line saying what to do."""
    from edge.config import load_config
    from provisioning.claim import ClaimError, claim

    config = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = load_config(config if config and config.exists() else None).unit.data_dir
    try:
        result = claim(
            args.code, args.cloud, data_dir, config=config, name=args.name, owner=args.owner
        )
    except ClaimError as err:
        print(f"claim failed: {err}", file=sys.stderr)
        return 1
    for path in result.files:
        print(f"  wrote {path}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """The wizard, or one step of it; exit 1 on a refused reading, 2 on a bad config."""
    from edge.calibration_report import pending
    from edge.config import load_config
    from edge.errors import ConfigError
    from edge.signals.calibration import CalibrationStore
    from edge.workers.build import CALIBRATION_FILE
    from provisioning.cal_report import report_now
    from provisioning.calibrate import (
        Feed,
        config_source,
        interactive,
        known_only,
        match_owner,
        tare_only,
    )
    from provisioning.wizard import Limits

    path = config_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    slots = [s for s in cfg.slots if args.slot is None or s.slot in args.slot]
    if not cfg.slots:
        print(
            f"{path}: no [[slots]] configured: say which channel weighs which slot first",
            file=sys.stderr,
        )
        return 2
    if args.slot and len(slots) != len(set(args.slot)):
        known = ", ".join(str(s.slot) for s in cfg.slots)
        print(f"no such slot: the config has slots {known}", file=sys.stderr)
        return 2
    one_step = args.tare or args.known_grams is not None
    if one_step and len(slots) != 1:
        print("--tare and --known-grams work on one slot: give --slot N", file=sys.stderr)
        return 2
    if args.known_grams is not None and not 0 < args.known_grams < 100_000:
        print("--known-grams must be a weight in grams, e.g. 500", file=sys.stderr)
        return 2
    if cfg.loadcells.source == "sim":
        print("load cells are simulated (loadcells.source = 'sim'): an idle bench bay answers")
    quiet_link_log()
    limits = Limits(sps=cfg.loadcells.sps, window_s=args.seconds, max_wait_s=args.max_wait)
    data_dir = Path(cfg.unit.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    feed = Feed(config_source(cfg))
    try:
        if args.tare:
            code = tare_only(feed, slots[0], data_dir, sys.stdout, limits)
        elif args.known_grams is not None:
            code = known_only(feed, slots[0], args.known_grams, data_dir, sys.stdout, limits)
        else:
            store = CalibrationStore(data_dir / CALIBRATION_FILE)
            code = 1 if interactive(feed, slots, store, sys.stdin, sys.stdout, limits) else 0
    except KeyboardInterrupt:
        print("\nstopped: slots finished so far are saved")
        code = 1
    finally:
        feed.close()
    if pending(data_dir) is not None:
        report_now(cfg, data_dir, sys.stdout)
    match_owner(data_dir)
    return code


def cmd_install(args: argparse.Namespace) -> int:
    """Write the files (and enable the service on the real root)."""
    import subprocess

    from edge.config import load_config
    from edge.errors import ConfigError
    from provisioning.install import (
        UNIT_FILE,
        enable,
        find_mcu_serials,
        installed_command,
        plan,
        write,
    )

    root = args.root or Path("/")
    text = None
    if args.config is not None:
        try:
            load_config(args.config)
            text = args.config.read_text(encoding="utf-8")
        except (ConfigError, OSError) as err:
            print(f"not installed: {err}", file=sys.stderr)
            return 2
    serial = args.mcu_serial
    if serial is None:
        found = find_mcu_serials()
        if len(found) > 1:
            print(
                f"{len(found)} MCUs plugged in ({', '.join(found)}): give --mcu-serial",
                file=sys.stderr,
            )
            return 2
        serial = found[0] if found else None
    try:
        files = plan(command=installed_command(), mcu_serial=serial, config_text=text)
    except ValueError as err:
        print(f"not installed: {err}", file=sys.stderr)
        return 2
    for path, what in write(root, files):
        print(f"  {what} {path}")
    if serial:
        print(f"  the MCU with serial {serial} will appear as /dev/shelfsense-mcu")
    else:
        print(
            "  no MCU plugged in: the udev rule matches any RP2040 MCU "
            "(install again with it plugged in to match its serial number)"
        )
    if args.root is not None:
        print(f"not enabled (--root): on the unit, `systemctl enable {UNIT_FILE.name}`")
        return 0
    try:
        for cmd in enable(root):
            print(f"  ran {cmd}")
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"files written, but enabling failed: {err}", file=sys.stderr)
        return 1
    print(
        "enabled: it starts at boot; claim and calibrate first, then "
        f"`systemctl start {UNIT_FILE.name}`"
    )
    return 0


def _lan_address() -> str:
    """This unit's address on the store network (no packet is sent), else localhost."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing is sent
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def cmd_setup(args: argparse.Namespace) -> int:
    """Serve the setup page until staff finish (0), or it times out (1); 2 on a bad config."""
    import threading
    import time

    from edge.camera.registry import make_source
    from edge.config import load_config
    from edge.errors import ConfigError
    from provisioning.calibrate import Feed, config_source, match_owner
    from provisioning.setup_announce import Announcer
    from provisioning.setup_server import SetupServer
    from provisioning.setup_session import SetupSession
    from provisioning.setup_unit import SetupUnit
    from provisioning.wizard import Limits

    path = config_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if not 0 < args.minutes <= 24 * 60:
        print("--minutes must be between 0 and 1440", file=sys.stderr)
        return 2
    data_dir = Path(cfg.unit.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    quiet_link_log()
    feed = Feed(config_source(cfg))
    session = SetupSession()
    announcer = Announcer(
        cfg, url="", pin=session.pin, until=time.time() + args.minutes * 60, cloud=args.cloud
    )  # its url once the page listens
    unit = SetupUnit(
        cfg,
        feed,
        config_path=path,
        cloud=args.cloud,
        limits=Limits(sps=cfg.loadcells.sps),
        on_claimed=lambda r: announcer.announce(unit.cloud),
    )
    try:
        server = SetupServer((args.host, args.port), session, unit)
    except OSError as err:
        feed.close()
        print(f"cannot serve the setup page on port {args.port}: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    camera = None
    if not args.no_camera and not unit.claim_state()[1]:
        camera = unit.watch_camera(make_source(cfg.camera), stop)
    host = _lan_address() if args.host in ("0.0.0.0", "") else args.host
    url = f"http://{host}:{server.server_address[1]}/"
    announcer.url = url
    print(f"setup page: {url}")
    print(f"PIN: {session.pin}")
    print(f"(setup mode ends when staff press Finish, or in {args.minutes:g} minutes)", flush=True)
    announcer.announce()
    try:
        why = server.run(deadline_s=args.minutes * 60)
    except KeyboardInterrupt:
        why = "stopped"
    finally:
        stop.set()
        if camera is not None:
            camera.join(timeout=10)
        feed.close()
        match_owner(data_dir)
        announcer.withdraw()
    print(f"setup {why}; the setup page is closed")
    return 0 if why == "finished" else 1
