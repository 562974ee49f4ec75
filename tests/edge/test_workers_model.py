"""With a trained bundle installed the model decides, and events say which model did."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.config import parse_config
from edge.health import Health
from edge.workers.build import add_sensing
from edge.workers.decide import BundleWatch, build_decider
from models.bundle import public_key_pem
from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.runtime.config import ModelConfig
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext
from models.wire import ShelfEvent

pytest.importorskip("torch")  # the test bundle is exported from a tiny random student
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.models.conftest import build_bundle

    tmp = tmp_path_factory.mktemp("bundle")
    built = build_bundle(tmp, version=3)
    key = tmp / "trusted.pem"
    key.write_bytes(public_key_pem(built.key))
    return built.path, key


def test_installed_bundle_decides_windows(installed: tuple[Path, Path]) -> None:
    bundle, key = installed
    health = Health()
    d = build_decider(ModelConfig(bundle_dir=bundle, trusted_key=key), health=health)
    assert d.decided_by == "model" and d.model_version == 3
    assert health.get("model_version") == 3
    p = Presence("bay", 0.0, 9.0, 9.0, 0.6, 1)
    w = EventWindow(
        "bay-1",
        1,
        0.0,
        9.0,
        13,
        p,
        changes=(WeightChange(0, -330.0, -1, 2.0, 4.0, 0.9), WeightChange(1, 120.0, 1, 5, 7, 0.8)),
        slots={0: SlotContext(0, 330.0), 1: SlotContext(1, 120.0)},
    )
    lone = EventWindow("bay-1", 2, 20.0, 22.0, 13, None, changes=(w.changes[0],))
    seen, unseen = d.decide([w, lone])
    assert seen.interest in INTEREST_LABELS and 0 <= seen.interest_confidence <= 1
    assert len(seen.stock) == 2 and all(lab in STOCK_LABELS for lab, _ in seen.stock)
    assert unseen.interest is None and len(unseen.stock) == 1


def test_wrong_key_keeps_the_rules(installed: tuple[Path, Path], tmp_path: Path) -> None:
    from models.bundle import generate_key

    bundle, _ = installed
    other = tmp_path / "other.pem"
    other.write_bytes(public_key_pem(generate_key()))
    health = Health()
    d = build_decider(ModelConfig(bundle_dir=bundle, trusted_key=other), health=health)
    assert d.decided_by == "rules" and health.alarmed("model_refused")


def test_sim_agent_events_say_the_model_decided(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, key = installed
    cfg = parse_config(
        {
            "unit": {"device_id": "unit-m", "data_dir": str(tmp_path)},
            "loadcells": {"source": "sim", "sim_scenario": "busy", "sim_seed": 5},
            "camera": {"source": "sim", "width": 160, "height": 120},
            "model": {"bundle_dir": str(bundle), "trusted_key": str(key)},
            "sync": {"mode": "off"},
        }
    )
    agent = Agent(cfg)
    add_sensing(agent, speed=0, sim_hours=0.05)
    agent.start()
    try:
        deadline = time.monotonic() + 60
        while agent.health.get("sim_done") is not True:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rows = [ShelfEvent.model_validate_json(r.body) for r in agent.buffer.pending(limit=1000)]
    finally:
        agent.stop()
    assert rows
    assert all(e.decided_by == "model" and e.model_version == 3 for e in rows)


def test_install_model_verifies_then_switches_the_unit_to_the_model(
    installed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from shelfsense.cli import main

    bundle, key = installed
    current = tmp_path / "models" / "current"
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\ndata_dir = "{tmp_path}"\n[sync]\nmode = "off"\n'
        f'[model]\nbundle_dir = "{current}"\ntrusted_key = "{key}"\n'
    )
    now = [0.0]
    watch = BundleWatch(ModelConfig(bundle_dir=current, trusted_key=key), clock=lambda: now[0])
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    (tampered / "golden.jsonl").write_text("{}\n")
    assert main(["edge", "install-model", str(tampered), "--config", str(cfg)]) == 2
    assert not current.exists()  # nothing half-installed
    assert main(["edge", "install-model", str(bundle), "--config", str(cfg)]) == 0
    assert "installed" in capsys.readouterr().out
    assert (current / "manifest.json").is_file()
    assert sorted(p.name for p in current.parent.iterdir()) == ["current", "slot-a"]
    assert current.is_symlink()  # the pointer; no temporary left behind
    assert watch.poll() is None  # not due yet: looks every few seconds
    now[0] = 10.0
    live = watch.poll()  # the running agent switches to the model it finds
    assert live is not None and live.decided_by == "model" and live.model_version == 3
    now[0] = 20.0
    assert watch.poll() is None  # unchanged since
