"""``shelfsense provision install``: the files that make a Pi a shelfsense unit.

:func:`plan` decides what goes where (pure): the unit config at
``/etc/shelfsense/unit.toml`` (kept when one is there), the hardened systemd unit,
the ``sysusers.d`` entry for the service user, and the udev rule that names the
load-cell MCU by its serial number. :func:`write` puts the files under a root folder
(``/`` on a unit, any folder for tests and image builds), each atomically;
:func:`enable` then creates the user, reloads udev and systemd and enables the
service (only on the real root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from models.atomic import atomic_write

TEMPLATES = Path(__file__).resolve().parent / "systemd"
SERVICE = "shelfsense-edge.service"
CONFIG = Path("etc/shelfsense/unit.toml")
UNIT_FILE = Path("etc/systemd/system") / SERVICE
SYSUSERS = Path("usr/lib/sysusers.d/shelfsense.conf")
UDEV = Path("etc/udev/rules.d/99-shelfsense.rules")
STATE_DIR = Path("var/lib/shelfsense")
MCU_VENDOR = "2e8a"

STARTER_CONFIG = """\
# shelfsense unit config. `shelfsense provision claim` fills in the unit's ids;
# list the slots, then run `shelfsense provision calibrate`.
[unit]
device_id = "unclaimed"
data_dir = "/var/lib/shelfsense"

[loadcells]
source = "serial"
serial_port = "/dev/shelfsense-mcu"

# [[slots]]
# slot = 0
# channel = 0
# sku = "SKU-123"
# unit_grams = 250
"""


@dataclass(frozen=True, slots=True)
class InstallFile:
    """One file to write: where (relative to the root), what, and its mode."""

    path: Path
    text: str
    mode: int = 0o644
    keep_existing: bool = False


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def plan(
    *, command: str, mcu_serial: str | None, config_text: str | None = None
) -> list[InstallFile]:
    """The files of an install; ``config_text`` None keeps an existing config."""
    if any(c in (mcu_serial or "") for c in '"\\\n'):
        raise ValueError(f"not a serial number: {mcu_serial!r}")
    match = f', ATTRS{{serial}}=="{mcu_serial}"' if mcu_serial else ""
    return [
        InstallFile(
            CONFIG,
            config_text if config_text is not None else STARTER_CONFIG,
            0o640,
            keep_existing=config_text is None,
        ),
        InstallFile(UNIT_FILE, _template(SERVICE).replace("@SHELFSENSE@", command)),
        InstallFile(SYSUSERS, _template("shelfsense.conf")),
        InstallFile(UDEV, _template("99-shelfsense.rules").replace("@MATCH_SERIAL@", match)),
    ]


def write(root: Path, files: list[InstallFile]) -> list[tuple[Path, str]]:
    """Write ``files`` under ``root``; returns each path with ``wrote`` or ``kept``."""
    done = []
    for f in files:
        dest = root / f.path
        if f.keep_existing and dest.exists():
            done.append((dest, "kept"))
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            out.write(f.text)
        os.chmod(dest, f.mode)
        done.append((dest, "wrote"))
    (root / STATE_DIR).mkdir(parents=True, exist_ok=True, mode=0o750)
    return done


def find_mcu_serials(sys_root: Path = Path("/sys")) -> list[str]:
    """Serial numbers of the RP2040 MCUs plugged in now (read from sysfs)."""
    out = []
    for tty in sorted((sys_root / "class" / "tty").glob("ttyACM*")):
        dev = (tty / "device").resolve().parent  # the USB device above the interface
        try:
            vendor = (dev / "idVendor").read_text().strip()
            serial = (dev / "serial").read_text().strip()
        except OSError:
            continue
        if vendor == MCU_VENDOR and serial not in out:
            out.append(serial)
    return out


def installed_command() -> str:
    """The ``shelfsense`` command of this installation (an absolute path)."""
    here = Path(sys.executable).parent / "shelfsense"
    found = shutil.which("shelfsense")
    return str(here if here.exists() else Path(found).resolve() if found else here)


def enable(root: Path) -> list[str]:
    """Create the user, reload udev and systemd, enable the service; the commands run."""
    steps = [
        ["systemd-sysusers", str(root / SYSUSERS)],
        ["chown", "shelfsense:shelfsense", str(root / STATE_DIR)],
        ["chgrp", "shelfsense", str(root / CONFIG)],
        ["udevadm", "control", "--reload-rules"],
        ["udevadm", "trigger", "--subsystem-match=tty"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", SERVICE],
    ]
    ran = []
    for cmd in steps:
        subprocess.run(cmd, check=True)
        ran.append(" ".join(cmd))
    return ran
