"""A/B slots: install-model keeps the previous bundle and refuses a downgrade; kill -9 at any
moment of staging or switching leaves one complete, verified bundle in use."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.ota.slots import Slots
from models.bundle import generate_key, load_public_key, public_key_pem, verify_bundle
from tests.cloud.ota_support import train_output
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bundles(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Versions 1 and 2 signed by one key, and that key's public PEM."""
    key = generate_key()
    pem = tmp_path / "trusted.pem"
    pem.write_bytes(public_key_pem(key))
    return (
        train_output(tmp_path / "v1", key, 1) / "bundle",
        train_output(tmp_path / "v2", key, 2) / "bundle",
        pem,
    )


def install(cfg: Path, src: Path, *extra: str) -> int:
    from shelfsense.cli import main

    return main(["edge", "install-model", str(src), "--config", str(cfg), *extra])


def test_install_model_keeps_the_previous_and_refuses_a_downgrade(
    bundles: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2, pem = bundles
    current = tmp_path / "unit" / "models" / "current"
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\ndata_dir = "{tmp_path / "unit"}"\n[sync]\nmode = "off"\n'
        f'[model]\nbundle_dir = "{current}"\ntrusted_key = "{pem}"\n'
    )
    assert install(cfg, v1) == 0
    assert install(cfg, v2) == 0
    out = capsys.readouterr().out
    assert "version 1 kept as the previous slot" in out
    slots = Slots.open(current)
    assert (slots.current_version(), slots.previous_version()) == (2, 1)
    assert install(cfg, v1) == 2
    assert "older than 2 in use" in capsys.readouterr().err
    assert (slots.current_version(), slots.previous_version()) == (2, 1)
    assert install(cfg, v2) == 0
    assert "already in use" in capsys.readouterr().out
    assert install(cfg, v1, "--allow-downgrade") == 0
    assert (slots.current_version(), slots.previous_version()) == (1, 2)


def test_a_plain_bundle_folder_is_moved_into_the_slots(
    bundles: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import shutil

    v1, _, _ = bundles
    current = tmp_path / "models" / "current"
    shutil.copytree(v1, current)  # installed before the slots existed
    slots = Slots.open(current)
    assert current.is_symlink() and slots.current_version() == 1
    assert slots.previous_version() is None


def test_kill_9_while_staging_or_switching_leaves_a_whole_model(
    bundles: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    v1, v2, pem = bundles
    current = tmp_path / "unit" / "models" / "current"
    counter = tmp_path / "switches"
    rng = random.Random(7)
    seen: set[int] = set()
    # at least 8 kills, more until both versions were found in use: where each kill lands
    # depends on how fast the machine runs, and 8 kills once all found v2 in use under load
    for trial in range(40):
        if trial >= 8 and seen == {1, 2}:
            break
        counter.write_text("0")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.edge.ota_crash_child"]
            + [str(p) for p in (current, pem, v1, v2, counter)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        goal = rng.randint(1, 6)

        def switched(goal: int = goal) -> bool:
            return int(counter.read_text() or 0) >= goal

        wait_until(switched, timeout=60)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        slots = Slots.open(current)
        version = slots.current_version()
        assert version in (1, 2), f"trial {trial}: no complete bundle in use"
        assert (
            verify_bundle(current, trusted_keys=[load_public_key(pem.read_bytes())]).version
            == version
        )
        seen.add(version)
        other = slots.previous_version()
        assert other in (None, 3 - version)  # the other slot: whole, or not taken for a bundle
    assert seen == {1, 2}
