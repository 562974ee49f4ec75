"""``provision install --root``: the files an image build or a unit gets, checked by systemd."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from provisioning.install import CONFIG, SYSUSERS, UDEV, UNIT_FILE, find_mcu_serials
from shelfsense.cli import main

SERIAL = "E6614103E7A1B22F"


def install(root: Path, *extra: str) -> int:
    return main(["provision", "install", "--root", str(root), "--mcu-serial", SERIAL, *extra])


def test_install_writes_config_service_user_and_udev_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(tmp_path) == 0
    out = capsys.readouterr().out
    assert "not enabled (--root)" in out
    unit = (tmp_path / UNIT_FILE).read_text()
    for line in (
        "StateDirectory=shelfsense",
        "ConfigurationDirectory=shelfsense",
        "RestartPreventExitStatus=2",
        "Environment=SHELFSENSE_CONFIG=/etc/shelfsense/unit.toml",
        "User=shelfsense",
    ):
        assert line in unit.splitlines()
    assert "@SHELFSENSE@" not in unit
    exec_start = re.search(r"^ExecStart=(\S+)", unit, re.M)
    assert exec_start is not None and Path(exec_start.group(1)).is_absolute()
    assert f'ATTRS{{serial}}=="{SERIAL}"' in (tmp_path / UDEV).read_text()
    assert (tmp_path / SYSUSERS).read_text().count("\nu shelfsense ") == 1
    assert stat.S_IMODE((tmp_path / CONFIG).stat().st_mode) == 0o640
    assert "provision calibrate" in (tmp_path / CONFIG).read_text()


def test_a_reinstall_keeps_the_units_config_and_a_given_config_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(tmp_path) == 0
    (tmp_path / CONFIG).write_text('[unit]\ndevice_id = "unit-9"\n')
    assert install(tmp_path) == 0
    assert "kept" in capsys.readouterr().out
    assert "unit-9" in (tmp_path / CONFIG).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[unit]\nbogus = 1\n")
    other = tmp_path / "other"
    assert install(other, "--config", str(bad)) == 2
    assert "unit.bogus" in capsys.readouterr().err
    assert not (other / UNIT_FILE).exists()


def test_a_quote_in_the_serial_number_is_refused(tmp_path: Path) -> None:
    assert main(["provision", "install", "--root", str(tmp_path), "--mcu-serial", 'x"y']) == 2
    assert not (tmp_path / UDEV).exists()


def test_the_mcu_serial_is_found_in_sysfs(tmp_path: Path) -> None:
    usb = tmp_path / "devices" / "usb1" / "1-1"
    iface = usb / "1-1:1.0"
    iface.mkdir(parents=True)
    (usb / "idVendor").write_text("2e8a\n")
    (usb / "serial").write_text(f"{SERIAL}\n")
    tty = tmp_path / "class" / "tty" / "ttyACM0"
    tty.mkdir(parents=True)
    (tty / "device").symlink_to(iface)
    assert find_mcu_serials(tmp_path) == [SERIAL]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_unit_and_rates_its_exposure_low(tmp_path: Path) -> None:
    assert install(tmp_path) == 0
    unit = tmp_path / UNIT_FILE
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={tmp_path}", UNIT_FILE.name],
        capture_output=True,
        text=True,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert score is not None, security.stdout + security.stderr
    assert float(score.group(1)) < 3.0


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers here")
def test_sysusers_creates_the_service_user_in_the_root(tmp_path: Path) -> None:
    assert install(tmp_path) == 0
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(tmp_path / SYSUSERS)],
        check=True,
        capture_output=True,
    )
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^shelfsense:x:\d+:\d+:.*:/var/lib/shelfsense:", passwd, re.M)
    groups = (tmp_path / "etc" / "group").read_text()
    assert re.search(r"^dialout:x:\d+:shelfsense$", groups, re.M)
