"""The cloud's shipped systemd units, service user and settings file, checked by systemd.

``cloud/deploy/``: the API service, the MQTT ingest worker template, the sysusers
entry and the example ``cloud.toml``. Each unit passes ``systemd-analyze verify``
with the installed command in place of ``@SHELFSENSE@``, rates a low exposure,
and starts a command line the CLI accepts with the shipped settings file.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.settings import build_settings
from shelfsense.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "cloud" / "deploy"
UNITS = {  # shipped file: the name it is checked under (a template as one instance)
    "shelfsense-cloud.service": "shelfsense-cloud.service",
    "shelfsense-mqtt-ingest@.service": "shelfsense-mqtt-ingest@1.service",
}
COMMAND = str(Path(sys.executable).with_name("shelfsense"))


def _install(root: Path) -> Path:
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for shipped, name in UNITS.items():
        text = (DEPLOY / shipped).read_text().replace("@SHELFSENSE@", COMMAND)
        (units / name).write_text(text)
    return units


def _exec_start(name: str) -> list[str]:
    text = (DEPLOY / name).read_text()
    (line,) = re.findall(r"^ExecStart=(.*)$", text, re.M)
    return shlex.split(line)


@pytest.mark.parametrize("shipped", sorted(UNITS))
def test_each_unit_runs_a_command_the_cli_accepts_with_the_shipped_settings(
    shipped: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = _exec_start(shipped)
    assert argv[0] == "@SHELFSENSE@"
    args = build_parser().parse_args(argv[1:])
    config = Path(args.config)
    assert config == Path("/etc/shelfsense-cloud/cloud.toml")
    monkeypatch.setenv("SHELFSENSE_CLOUD_DATABASE_URL", "postgresql+psycopg://db.internal/x")
    settings = build_settings(DEPLOY / config.name)
    assert settings.database_url.startswith("postgresql")  # secrets come from the env file
    assert settings.mqtt_port == 1884  # the private service listener of broker-files


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_cloud_units_and_rates_their_exposure_low(tmp_path: Path) -> None:
    units = _install(tmp_path)
    for name in UNITS.values():
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(units / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr
        assert verify.stderr.strip() == "", verify.stderr
        security = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", f"--root={tmp_path}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
        assert score is not None, security.stdout + security.stderr
        assert float(score.group(1)) < 3.0, security.stdout


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers here")
def test_sysusers_creates_the_cloud_service_user(tmp_path: Path) -> None:
    conf = DEPLOY / "shelfsense-cloud.sysusers"
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(conf)], check=True, capture_output=True
    )
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^shelfsense-cloud:x:\d+:\d+:.*:/var/lib/shelfsense-cloud:", passwd, re.M)
